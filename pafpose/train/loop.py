"""The training loop: optimiser and schedule, AMP on CUDA, clipping, checkpoints, logs, validation.

One function, `train(TrainConfig)`, runs alone or as one process of a `torchrun` job
(DistributedDataParallel); only rank 0 writes files. A run folder holds `last.pt` (model,
optimiser, schedule, scaler, step), `best.pt` (best validation AP), `log.csv`, `val.csv`,
`summary.json`, `val_model.onnx` (the last validated weights, exported) and, when TensorBoard
is installed, `tb/`.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import InputError, NotFoundError
from ..files import atomic_path
from . import distributed as D
from .config import TrainConfig
from .data import AugmentConfig, CocoPoseDataset, TargetConfig, coco_paths
from .export import CHECKPOINT_FORMAT, export_onnx, load_checkpoint
from .loss import pose_loss
from .networks import NetworkConfig, PoseNetwork, build_network, network_from_graph


@dataclass
class TrainResult:
    """What a run did: steps, the per-step losses of this process, validations, digests."""

    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    rank_digests: list[str] = field(default_factory=list)
    interrupted: bool = False
    is_main: bool = True
    output: Path | None = None

    def describe(self) -> str:
        """A few lines for the console: steps, losses, step time, validation, where things are."""
        lines = [f"trained {self.step} steps" + (" (interrupted)" if self.interrupted else "")]
        if self.history:
            first, last = self.history[0], self.history[-1]
            ms = float(np.median([h["step_ms"] for h in self.history]))
            lines.append(f"loss {first['loss']:.2f} (step {first['step']}) -> {last['loss']:.2f} "
                         f"(step {last['step']}); median step {ms:.0f} ms")
        for v in self.validations:
            lines.append(f"validation at step {v['step']}: AP {v['AP']:.3f} AP50 {v['AP50']:.3f} "
                         f"AR {v['AR']:.3f} ({v['images']} images)")
        if len(self.rank_digests) > 1:
            same = len(set(self.rank_digests)) == 1
            lines.append(f"{len(self.rank_digests)} processes, weights "
                         + ("identical on every rank" if same else "DIFFER between ranks"))
        if self.checkpoint is not None:
            lines.append(f"checkpoint: {self.checkpoint}")
        return "\n".join(lines)


class CsvLog:
    """Append rows to a CSV file (header written once), flushed at every row."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.fields = fields
        new = not path.exists() or path.stat().st_size == 0
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=fields, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.file.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Write one row."""
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()


def _tensorboard(folder: Path) -> Any:
    """A SummaryWriter when TensorBoard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


def seed_weights_path(model: str) -> Path:
    """The seed's frozen graph of a named model (fetched and cached on first use)."""
    from ..models.fetch import fetch_source
    from ..models.registry import MODELS, ModelSpec

    if not isinstance(MODELS.get(model), ModelSpec):
        raise InputError(f"no published seed weights for {model!r} here; pass its frozen graph "
                         "(.pb) to --weights")
    return fetch_source(model, progress=False)


def initial_network(cfg: TrainConfig) -> tuple[PoseNetwork, bool, dict[str, Any] | None]:
    """The network to start from, whether its batch norms stay frozen, and the source ckpt."""
    weights = cfg.weights
    if weights is None or weights == "scratch":
        net = build_network(cfg.model, stages=cfg.stages)
        return net, bool(cfg.freeze_bn), None
    if weights == "seed":
        weights = str(seed_weights_path(cfg.model))
    path = Path(weights)
    if not path.is_file():
        raise NotFoundError(f"weights {weights} not found")
    if path.suffix.lower() == ".pb":
        net = network_from_graph(cfg.model, path, stages=cfg.stages)
        # The seed's graphs fold (or fix) their batch norms: keep them as they are.
        return net, True if cfg.freeze_bn is None else cfg.freeze_bn, None
    ckpt = load_checkpoint(path)
    config = NetworkConfig(**ckpt["network"])
    net = build_network(config)
    net.load_state_dict(ckpt["model"])
    frozen = bool(ckpt.get("freeze_bn", False)) if cfg.freeze_bn is None else cfg.freeze_bn
    return net, frozen, ckpt


def set_train_mode(net: nn.Module, freeze_bn: bool) -> None:
    """Training mode; batch norms with running statistics stay in eval mode when frozen."""
    net.train()
    if freeze_bn:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate multiplier at `step`: linear warmup, then constant or cosine to 0."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


class _DeferInterrupt:
    """Hold Ctrl-C back while a step is applied, so a saved step is always a whole step."""

    def __enter__(self) -> _DeferInterrupt:
        self.hit = False
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, *_: Any) -> None:
        self.hit = True

    def __exit__(self, *exc: Any) -> None:
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        if self.hit and exc[0] is None:
            raise KeyboardInterrupt


def _save(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def validate(
    net: PoseNetwork, cfg: TrainConfig, step: int, folder: Path
) -> dict[str, float]:
    """COCO keypoint AP of the current weights through the inference path of `pafpose eval`
    (ONNX export -> PoseEstimator -> pafpose.evaluate), on the validation split."""
    from ..estimator import PoseEstimator
    from ..evaluate import evaluate_coco

    ann, images = coco_paths(cfg.coco_dir, cfg.val_split)
    onnx_path = export_onnx(net, folder / "val_model.onnx", sample_size=cfg.input_size)
    options = {"preset": cfg.val_preset} if cfg.val_preset else {}
    est = PoseEstimator(onnx_path, progress=False, **options)
    result = evaluate_coco(est, ann, images, limit=cfg.val_limit, progress=False)
    return {"step": step, **result.stats, "images": result.images}


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) a training run; see the module docstring for what it writes."""
    info = D.setup(cfg.device)
    try:
        return _train(cfg, info)
    finally:
        D.teardown()


def _train(cfg: TrainConfig, info: D.DistInfo) -> TrainResult:
    out = Path(cfg.output)
    last = out / "last.pt"
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    resume_state = None
    if cfg.resume and last.is_file():
        resume_state = load_checkpoint(last)
        net = build_network(NetworkConfig(**resume_state["network"]))
        net.load_state_dict(resume_state["model"])
        freeze_bn = bool(resume_state.get("freeze_bn", False))
    else:
        if cfg.resume and info.is_main:
            tqdm.write(f"pafpose: no checkpoint in {out}; starting a new run", file=sys.stderr)
        net, freeze_bn, _ = initial_network(cfg)
    net.to(info.device)

    ann, images = coco_paths(cfg.coco_dir, cfg.train_split)
    if cfg.val_every >= 0:
        coco_paths(cfg.coco_dir, cfg.val_split)  # fail now, not after training
    dataset = CocoPoseDataset(
        ann, images, cfg.input_size, AugmentConfig() if cfg.augment else AugmentConfig.none(),
        TargetConfig(), seed=cfg.seed, limit=cfg.train_limit)
    sampler = D.ResumableSampler(len(dataset), info, shuffle=True, seed=cfg.seed)
    steps_per_epoch = sampler.per_rank() // cfg.batch_size
    if steps_per_epoch == 0:
        raise InputError(f"{len(dataset)} training images are fewer than batch size "
                         f"{cfg.batch_size} x {info.world_size} process(es)")
    total = cfg.steps or cfg.epochs * steps_per_epoch
    use_cuda = info.device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
        drop_last=True, pin_memory=use_cuda, persistent_workers=False)

    model: nn.Module = net
    if info.distributed:
        if use_cuda and not freeze_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if use_cuda else None)
    params = [p for p in model.parameters() if p.requires_grad]
    base_lr = cfg.lr if cfg.lr is not None else (
        1e-4 if cfg.weights in (None, "scratch") else 1e-5)
    optimizer = torch.optim.AdamW(params, lr=base_lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, cfg.warmup_steps, cfg.schedule))
    use_amp = cfg.amp and use_cuda
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        if resume_state.get("scaler"):
            scaler.load_state_dict(resume_state["scaler"])
        step = int(resume_state["step"])

    def state() -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "network": net.config.to_dict(),
            "model": net.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "step": step, "freeze_bn": freeze_bn, "total_steps": total,
            "train": {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in asdict(cfg).items()},
        }

    log = val_log = writer = None
    if info.is_main:
        log = CsvLog(out / "log.csv", ["step", "epoch", "lr", "loss", "loss_heat", "loss_paf",
                                       "loss_last", "grad_norm", "step_ms", "images_per_s"])
        writer = _tensorboard(out / "tb")
    result = TrainResult(step=step, is_main=info.is_main, output=out)
    best_ap = -1.0
    bar = tqdm(total=total, initial=step, unit="step", desc="train", file=sys.stderr,
               disable=not (cfg.progress and info.is_main))

    def run_validation() -> None:
        nonlocal val_log, best_ap
        if info.is_main:
            net.eval()
            row = validate(net, cfg, step, out)
            set_train_mode(model, freeze_bn)
            result.validations.append(row)
            if val_log is None:
                val_log = CsvLog(out / "val.csv", list(row))
            val_log.write(row)
            if writer is not None:
                writer.add_scalar("val/AP", row["AP"], step)
            if row["AP"] > best_ap:
                best_ap = row["AP"]
                if last.is_file():
                    shutil.copyfile(last, out / "best.pt")
            tqdm.write(f"step {step}: AP {row['AP']:.3f} AP50 {row['AP50']:.3f} "
                       f"({row['images']} images)", file=sys.stderr)
        D.barrier(info)

    def save() -> None:
        if info.is_main:
            _save(last, state())
            result.checkpoint = last
        D.barrier(info)

    set_train_mode(model, freeze_bn)
    epoch = step // steps_per_epoch
    try:
        while step < total:
            sampler.set_epoch(epoch, (step - epoch * steps_per_epoch) * cfg.batch_size)
            t0 = time.perf_counter()
            for batch in loader:
                image = batch["image"].to(info.device, non_blocking=True)
                heat = batch["heat"].to(info.device, non_blocking=True)
                paf = batch["paf"].to(info.device, non_blocking=True)
                mask = batch["mask"].to(info.device, non_blocking=True)
                with torch.autocast(device_type=info.device.type, dtype=torch.float16,
                                    enabled=use_amp):
                    outputs = model(image)
                loss, parts = pose_loss(outputs, heat, paf, mask)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grad_norm = nn.utils.clip_grad_norm_(
                    params, cfg.clip_grad if cfg.clip_grad > 0 else float("inf"))
                with _DeferInterrupt():
                    scaler.step(optimizer)
                    scaler.update()
                    lr = optimizer.param_groups[0]["lr"]
                    scheduler.step()
                    step += 1
                    dt = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    row = {"step": step, "epoch": epoch, "lr": lr, **parts,
                           "grad_norm": float(grad_norm), "step_ms": dt * 1000,
                           "images_per_s": cfg.batch_size * info.world_size / max(dt, 1e-9)}
                    result.history.append(row)
                    result.step = step
                bar.update()
                if step % cfg.log_every == 0 or step == total:
                    avg = D.mean_across(info, {k: parts[k] for k in parts})
                    row.update(avg)
                    if log is not None:
                        log.write(row)
                    if writer is not None:
                        for k in ("loss", "loss_heat", "loss_paf", "loss_last", "lr",
                                  "grad_norm"):
                            writer.add_scalar(f"train/{k}", row[k], step)
                    bar.set_postfix(loss=f"{row['loss']:.2f}", lr=f"{lr:.2e}")
                if cfg.save_every and step % cfg.save_every == 0 and step < total:
                    save()
                if cfg.val_every > 0 and step % cfg.val_every == 0 and step < total:
                    run_validation()
                if step >= total:
                    break
            epoch += 1
        save()
        if cfg.val_every >= 0:
            run_validation()
        result.rank_digests = D.gather_strings(info, D.parameter_digest(net))
        if info.is_main:
            summary = {"step": step, "total_steps": total, "world_size": info.world_size,
                       "rank_digests": result.rank_digests,
                       "final_loss": result.history[-1]["loss"] if result.history else None,
                       "validations": result.validations}
            with atomic_path(out / "summary.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=1) + "\n")
    except KeyboardInterrupt:
        result.interrupted = True
        if info.is_main and step > 0:
            _save(last, state())
            result.checkpoint = last
            tqdm.write(f"pafpose: interrupted; step {step} saved to {last} (--resume goes on)",
                       file=sys.stderr)
        raise
    finally:
        bar.close()
        for f in (log, val_log):
            if f is not None:
                f.close()
        if writer is not None:
            writer.close()
    return result
