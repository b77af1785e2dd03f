"""Masked L2 loss over every refinement stage (the seed's and OpenPose's training loss)."""

from __future__ import annotations

import torch

from ..skeleton import NUM_HEATMAPS


def stage_losses(
    outputs: list[torch.Tensor], heat: torch.Tensor, paf: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-stage (heatmap, PAF) losses: sum of mask * (pred - target)^2 / (2 * batch).

    outputs: per stage (N, 57, h, w), heatmaps first; heat (N, 19, h, w); paf (N, 38, h, w);
    mask (N, 1, h, w), 1 where supervised. Returns two tensors of shape (stages,).
    """
    n = heat.shape[0]
    heat_l, paf_l = [], []
    for out in outputs:
        out = out.float()
        dh = (out[:, :NUM_HEATMAPS] - heat) ** 2 * mask
        dp = (out[:, NUM_HEATMAPS:] - paf) ** 2 * mask
        heat_l.append(dh.sum() / (2 * n))
        paf_l.append(dp.sum() / (2 * n))
    return torch.stack(heat_l), torch.stack(paf_l)


def pose_loss(
    outputs: list[torch.Tensor], heat: torch.Tensor, paf: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total masked L2 loss over all stages, and its parts for logging."""
    h, p = stage_losses(outputs, heat, paf, mask)
    total = h.sum() + p.sum()
    parts = {"loss": float(total.detach()), "loss_heat": float(h.sum().detach()),
             "loss_paf": float(p.sum().detach()), "loss_last": float((h[-1] + p[-1]).detach())}
    return total, parts
