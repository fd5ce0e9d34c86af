"""Application-level timing: a ResNet-18 training step with the square-root layers in place of
``nn.BatchNorm2d`` (ZCA whitening, as in decorrelated BN) or of average pooling + linear (the
iSQRT-COV head), and the first BatchNorm layer alone, each as a ratio against the unmodified
network (or ``nn.BatchNorm2d``) in the same run.

A layer that fails to build or run is a "failed: ..." row, not an error.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

import sqrtlayers as sl

from .constants import OK, SKIPPED
from .environment import configure_tf32, describe_environment, resolve_device
from .methods import default_method_names
from .records import AppRecord, Results, describe_failure
from .settings import AppSettings
from .timing import Deadline, Progress, time_step

__all__ = ["run_app"]

#: Channels of ResNet-18's first BatchNorm, the layer the "zca-layer" variant times alone.
STEM_CHANNELS = 64

Row = tuple[str, str, str | None, Callable[[], nn.Module]]  # scenario, variant, backend, model


def _resnet18(num_classes: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-18; for CIFAR-sized inputs with the CIFAR stem (3x3 stride-1 conv,
    no max-pool) of the decorrelated-BN experiments, so the first BatchNorm sees 32x32 maps."""
    from torchvision.models import resnet18  # only this benchmark needs torchvision

    model = resnet18(weights=None, num_classes=num_classes)
    if image_size <= 32:
        model.conv1 = nn.Conv2d(3, STEM_CHANNELS, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def _rows(s: AppSettings) -> list[Row]:
    """Ordered so that a time budget cuts the costliest rows (every BatchNorm whitened) first."""
    backends = s.backends or [n for n in default_method_names(torch.device("cpu")) if "." not in n]
    cifar = lambda: _resnet18(10, s.zca_image_size)  # noqa: E731
    imagenet = lambda: _resnet18(1000, s.head_image_size)  # noqa: E731
    rows: list[Row] = []
    if "zca-layer" in s.variants:
        rows.append(("layer", "nn.BatchNorm2d (baseline)", None, lambda: nn.BatchNorm2d(STEM_CHANNELS)))
        rows += [("layer", "ZCABatchNorm (one group)", b, lambda b=b: sl.ZCABatchNorm(STEM_CHANNELS, backend=b))
                 for b in backends]  # fmt: skip
    if {"zca-first", "zca-all"} & set(s.variants):
        rows.append(("zca", "BatchNorm2d (baseline)", None, cifar))
    if "zca-first" in s.variants:
        # Decorrelated BN: only the first BatchNorm is whitened, its 64 channels as one group.
        rows += [("zca", f"first BN → ZCABatchNorm (one {STEM_CHANNELS}-channel group)", b,
                  lambda b=b: sl.convert_zca_batchnorm(cifar(), first_only=True, group_size=None, backend=b))
                 for b in backends]  # fmt: skip
    if "head" in s.variants:
        rows.append(("head", "avgpool + fc (baseline)", None, imagenet))
        # last_stride=2 keeps torchvision's backbone, so the ratio is the head's cost against
        # pooling + fc alone (a stride-1 last stage would also quadruple layer4's work).
        rows += [("head", f"avgpool + fc → ISqrtCovHead (reduced_dim={s.reduced_dim})", b,
                  lambda b=b: sl.attach_isqrt_cov_head(imagenet(), 1000, reduced_dim=s.reduced_dim, last_stride=2,
                                                       backend=b)) for b in backends]  # fmt: skip
    if "zca-all" in s.variants:
        rows += [("zca", f"all BN → ZCABatchNorm (groups of {s.zca_group_size})", b,
                  lambda b=b: sl.convert_zca_batchnorm(cifar(), group_size=s.zca_group_size, backend=b))
                 for b in backends]  # fmt: skip
    return rows


def _inputs(s: AppSettings, scenario: str, device: torch.device) -> tuple[Tensor, Tensor]:
    """A fixed batch and its target: class labels, or for the bare layer an upstream gradient."""
    gen = torch.Generator().manual_seed(s.seed)
    if scenario == "layer":
        shape = (s.zca_batch, STEM_CHANNELS, s.zca_image_size, s.zca_image_size)
        return torch.randn(shape, generator=gen).to(device), torch.randn(shape, generator=gen).to(device)
    batch, size, classes = (s.head_batch, s.head_image_size, 1000) if scenario == "head" else (
        s.zca_batch, s.zca_image_size, 10)  # fmt: skip
    return (torch.randn(batch, 3, size, size, generator=gen).to(device),
            torch.randint(classes, (batch,), generator=gen).to(device))  # fmt: skip


def _training_step(model: nn.Module, x: Tensor, target: Tensor, layer: bool) -> Callable[[], Tensor]:
    """One SGD step on the fixed batch: forward, loss, backward, update."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = (lambda out: (out * target).sum()) if layer else (lambda out: nn.functional.cross_entropy(out, target))

    def step() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x))
        loss.backward()
        optimizer.step()
        return loss

    return step


def run_app(s: AppSettings) -> Results:
    """Time every row; ratios against the scenario's baseline."""
    device = resolve_device(s.device)
    configure_tf32(s.tf32)
    results = Results(
        meta=describe_environment(device, torch.float32, s.tf32) | {"config": dict(vars(s))},
        notes=[f"Training step = forward, loss, backward and an SGD update on a fixed random batch (ResNet-18 from "
               f"torchvision, no weights; the bare layer with a fixed upstream gradient); median of up to {s.repeats} "
               f"steps after up to {s.warmup} warm-up steps (each capped at {s.max_seconds:g} s)."],
    )  # fmt: skip
    rows, deadline, baselines = _rows(s), Deadline(s.time_budget), {}
    bar = Progress(len(rows), s.progress)
    for scenario, variant, backend, build in rows:
        x, target = _inputs(s, scenario, device)
        r = AppRecord(scenario, variant, backend, "×".join(map(str, x.shape)))
        r.status = SKIPPED if deadline.expired() else OK
        try:
            if r.status == OK:
                torch.manual_seed(s.seed)
                step = _training_step(build().to(device).train(), x, target, scenario == "layer")
                r.median_ms, r.min_ms, r.repeats = time_step(
                    step, device, warmup=s.warmup, repeats=s.repeats, max_seconds=s.max_seconds)
        except Exception as exc:  # a layer that fails is a table row
            r.status = describe_failure(exc)
        if backend is None and r.status == OK:
            baselines[scenario] = r.median_ms
        if baselines.get(scenario) and r.status == OK:
            r.ratio_vs_baseline = r.median_ms / baselines[scenario]
        results.app.append(r)
        bar.step(f"{scenario} {variant} {backend or ''}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results
