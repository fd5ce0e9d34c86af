"""Forward+backward time of ZCABatchNorm against nn.BatchNorm2d, side by side in one run.

    python benchmarks/zca_vs_batchnorm.py [--shape 128 64 32 32] [--repeats 10] [--device cpu] [--threads 1]

Prints a markdown table: median milliseconds over ``--repeats`` timed runs after ``--warmup``
untimed ones, and the ratio to BatchNorm2d measured in the same run (training mode, float32).
Not a test: nothing here gates on a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqrtlayers.layers import ZCABatchNorm  # noqa: E402


def time_forward_backward(layer: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of ``layer(x)`` + backward of a fixed random projection, per repeat."""
    grad = torch.randn_like(x)

    def step() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(grad)

    sync: Callable[[], None] = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[128, 64, 32, 32], metavar=("N", "C", "H", "W"))
    parser.add_argument("--group-sizes", type=int, nargs="*", default=[], help="extra ZCA rows with these group sizes")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU); default: torch's")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    n, c, h, w = args.shape
    x = torch.randn(n, c, h, w, device=args.device).requires_grad_()
    layers: dict[str, nn.Module] = {
        "nn.BatchNorm2d": nn.BatchNorm2d(c),
        "ZCABatchNorm (default: mpa-lya, one group)": ZCABatchNorm(c),
        "ZCABatchNorm (eigh, one group)": ZCABatchNorm(c, backend="eigh"),
    }
    for g in args.group_sizes:
        layers[f"ZCABatchNorm (mpa-lya, group_size={g})"] = ZCABatchNorm(c, group_size=g)
    # Interleave the layers over the repeats so that background load hits all of them alike.
    samples: dict[str, list[float]] = {name: [] for name in layers}
    for name, layer in layers.items():
        layer.to(args.device).train()
        time_forward_backward(layer, x, args.warmup, 1)
    for _ in range(args.repeats):
        for name, layer in layers.items():
            samples[name] += time_forward_backward(layer, x, 0, 1)

    base = statistics.median(samples["nn.BatchNorm2d"])
    print(f"input {tuple(x.shape)} float32 on {args.device}, threads={torch.get_num_threads()}, "
          f"torch {torch.__version__}, median of {args.repeats} after {args.warmup} warm-up runs\n")
    print("| layer | forward+backward ms | x BatchNorm2d |")
    print("| --- | --- | --- |")
    for name, times in samples.items():
        median = statistics.median(times)
        print(f"| {name} | {median:.1f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
