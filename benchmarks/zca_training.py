"""ZCA whitening in training, measured: ResNet-18 with every BatchNorm converted, trained for a few
SGD steps per backend (``python -m benchmarks zca``), and the per-epoch curves of the default job
run once per backend (``python -m benchmarks zca --curves DIR...``). Writes ``zca.md`` (and
``zca_curves.png`` for the curves) into ``--out``.

The ResNet-18 case is the one of ``docs/METHODS.md`` ("ZCA whitening in training"): torchvision's
ResNet-18 as it is, on 32x32 images (scikit-learn's digits, upscaled and repeated to 3 channels:
no download), batch 32, SGD at lr 0.1, so the deep layers whiten 256 channels from 128 positions
(2x2 maps) and 512 from 32 (1x1).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

import sqrtlayers as sl

__all__ = ["run_resnet18", "read_curves", "main"]

#: (label, backend or None for plain BatchNorm, group_size given to convert_zca_batchnorm)
VARIANTS: tuple[tuple[str, str | None, int | None], ...] = (
    ("BatchNorm", None, None),
    ("mpa-lya, groups of 16", "mpa-lya", 16),
    ("accurate, groups of 16", "accurate", 16),
    ("eigh, groups of 16", "eigh", 16),
    ("ns, groups of 16", "ns", 16),
    ("accurate, one group per layer", "accurate", None),
    ("eigh, one group per layer", "eigh", None),
)


def _digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from datamodules.digits import load_digit_images

    images, labels = load_digit_images(image_size=32, num_channels=3)
    images = (images - images.mean()) / images.std()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    train, held_out = order[:1500], order[1500:]
    return images[train], labels[train], images[held_out], labels[held_out]


def _network(backend: str | None, group_size: int | None) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=10)
    if backend is not None:
        sl.convert_zca_batchnorm(model, backend=backend, group_size=group_size)
    return model


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, training: bool) -> float:
    """Accuracy in eval mode, or in training mode (batch statistics, running ones left alone)."""
    layers = [m for m in model.modules() if hasattr(m, "momentum")]
    saved = [m.momentum for m in layers]
    model.train(training)
    for m in layers:
        m.momentum = 0.0
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), 128):
            logits = model(images[start : start + 128])
            correct += int((logits.argmax(1) == labels[start : start + 128]).sum())
    for m, momentum in zip(layers, saved):
        m.momentum = momentum
    return correct / len(labels)


def run_resnet18(steps: int, seed: int = 0) -> list[dict[str, object]]:
    """One row per variant: loss and gradient norm over the steps, the step of the first
    non-finite loss, eval and train-mode accuracy on held-out digits, seconds per step."""
    train_x, train_y, test_x, test_y = _digits(seed)
    rows = []
    for label, backend, group_size in VARIANTS:
        torch.manual_seed(seed)
        model = _network(backend, group_size)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        gen = torch.Generator().manual_seed(seed)
        norms, nan_step, loss = [], None, math.nan
        start = time.perf_counter()
        for step in range(steps):
            batch = torch.randint(0, len(train_y), (32,), generator=gen)
            model.train()
            loss_t = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss_t.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf))
            loss, norms = float(loss_t), norms + [norm]
            if not (math.isfinite(loss) and math.isfinite(norm)):
                nan_step = step
                break
            optimizer.step()
        seconds = (time.perf_counter() - start) / max(len(norms), 1)
        finite = nan_step is None
        rows.append({
            "variant": label,
            "final_loss": loss,
            "max_grad_norm": max(norms) if norms else math.nan,
            "nan_step": nan_step,
            "eval_acc": _accuracy(model, test_x, test_y, False) if finite else math.nan,
            "train_mode_acc": _accuracy(model, test_x, test_y, True) if finite else math.nan,
            "seconds_per_step": seconds,
        })  # fmt: skip
        print(f"{label}: {rows[-1]}", file=sys.stderr)
    return rows


def resnet18_markdown(rows: list[dict[str, object]], steps: int) -> str:
    lines = [
        f"torchvision ResNet-18, every BatchNorm converted, {steps} SGD steps (lr 0.1, batch 32) on "
        "32x32 digits; accuracy on 297 held-out digits in eval mode (running statistics) and in "
        "training mode (batch statistics).",
        "",
        "| variant | final loss | max grad norm | first NaN step | eval acc | train-mode acc | s/step |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        nan = "-" if r["nan_step"] is None else str(r["nan_step"])
        lines.append(
            f"| {r['variant']} | {r['final_loss']:.3f} | {r['max_grad_norm']:.3g} | {nan} | "
            f"{r['eval_acc']:.3f} | {r['train_mode_acc']:.3f} | {r['seconds_per_step']:.2f} |"
        )
    return "\n".join(lines)


def read_curves(run_dir: Path) -> dict[int, dict[str, float]]:
    """``{epoch: {train_acc, val_acc}}`` (and ``test_acc`` under epoch -1) from the newest
    ``metrics.csv`` under ``run_dir`` (a CSVLogger's folder)."""
    files = sorted(run_dir.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no metrics.csv under {run_dir}")
    epochs: dict[int, dict[str, float]] = {}
    for row in csv.DictReader(files[-1].open()):
        for key in ("train_acc", "val_acc", "test_acc"):
            if row.get(key):
                epoch = -1 if key == "test_acc" else int(row["epoch"])
                epochs.setdefault(epoch, {})[key] = float(row[key])
    return epochs


def curves_markdown(curves: dict[str, dict[int, dict[str, float]]]) -> str:
    """Per run: train/val accuracy per epoch, the largest train - val gap from epoch 4 on, and
    the test accuracy."""
    epochs = sorted({e for c in curves.values() for e in c if e >= 0})
    lines = [
        "| run | " + " | ".join(str(e) for e in epochs) + " | max gap (epoch >= 4) | test acc |",
        "| --- |" + " ---: |" * (len(epochs) + 2),
    ]
    for name, c in curves.items():
        cells = [f"{c[e].get('train_acc', math.nan):.2f}/{c[e].get('val_acc', math.nan):.2f}" if e in c else "" for e in epochs]
        gaps = [c[e]["train_acc"] - c[e]["val_acc"] for e in epochs if e >= 4 and e in c and len(c[e]) == 2]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {max(gaps, default=math.nan):.3f} | "
            f"{c.get(-1, {}).get('test_acc', math.nan):.3f} |"
        )
    return "\n".join(lines)


def plot_curves(curves: dict[str, dict[int, dict[str, float]]], path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for index, (name, c) in enumerate(curves.items()):
        epochs = sorted(e for e in c if e >= 0)
        color = f"C{index}"
        axes.plot(epochs, [c[e].get("train_acc", math.nan) for e in epochs], "--", color=color, label=f"{name} train")
        axes.plot(epochs, [c[e].get("val_acc", math.nan) for e in epochs], "-", marker=".", color=color, label=f"{name} val")
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy")
    axes.set_title("default job: train (dashed) and val (solid) accuracy per backend")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.savefig(path, dpi=100)
    return path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks zca", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100, help="SGD steps per ResNet-18 variant")
    p.add_argument("--curves", nargs="*", type=Path, default=[], help="run folders (NAME=DIR) of the default job")
    p.add_argument("--out", type=Path, default=Path("bench_out"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.curves:
        named = {}
        for item in args.curves:
            name, _, folder = str(item).partition("=")
            named[name] = read_curves(Path(folder))
        markdown = curves_markdown(named)
        plot_curves(named, args.out / "zca_curves.png")
    else:
        markdown = resnet18_markdown(run_resnet18(args.steps), args.steps)
    (args.out / "zca.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    return 0
