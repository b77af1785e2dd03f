"""Training cost of a network: step time, activation memory per image, MACs (figures only).

    python benchmarks/train_step.py --model mobilenet_thin --input 432x368 --batch-size 4

Times forward + masked-L2 loss + backward + AdamW step on random inputs (median over --steps
after --warmup untimed steps) on the chosen device, and counts the bytes autograd keeps for the
backward pass (the activation memory, which grows with the batch; on a GPU add the weights,
AdamW's two moments, the gradients and the framework's workspace).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pafpose.train.loss import pose_loss
from pafpose.train.networks import build_network, conv_flops, parameter_count


def saved_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for the backward pass of one forward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outs = net(x)
    del outs
    return sum(seen.values())


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_thin")
    ap.add_argument("--input", default="432x368")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    w, h = (int(v) for v in args.input.split("x"))
    dev = torch.device(args.device)
    net = build_network(args.model).to(dev).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5)
    b = args.batch_size
    x = torch.rand(b, 3, h, w, device=dev) * 255
    heat = torch.rand(b, 19, h // 8, w // 8, device=dev)
    paf = torch.rand(b, 38, h // 8, w // 8, device=dev) * 2 - 1
    mask = torch.ones(b, 1, h // 8, w // 8, device=dev)
    times = []
    for i in range(args.warmup + args.steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss, _ = pose_loss(net(x), heat, paf, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    act = saved_bytes(net, x[:1])
    params = parameter_count(net)
    macs = conv_flops(net.cpu(), (w, h))
    ms = statistics.median(times) * 1000
    print(f"{args.model} {w}x{h} batch {b} on {dev} ({torch.get_num_threads()} threads)")
    print(f"  parameters {params / 1e6:.2f} M; forward {macs / 1e9:.2f} GMAC per image")
    print(f"  step (fwd + loss + bwd + AdamW): median {ms:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) = "
          f"{b / (ms / 1000):.2f} images/s")
    print(f"  activations kept for backward: {act / 2**20:.0f} MiB per image; weights + grads + "
          f"AdamW moments: {params * 16 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
