"""Application-level timing: a ResNet-18 training step with the square-root layers in place of
``nn.BatchNorm2d`` (ZCA whitening, as in decorrelated BN) or of average pooling + linear (the
iSQRT-COV head), as a ratio against the unmodified network in the same run.

The layers (:mod:`sqrtlayers.layers`) are imported lazily: the study does not need them, and a
missing or failing layer turns into a "failed: ..." row instead of an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .environment import configure_tf32, describe_environment
from .progress import make_progress
from .records import OK, AppRecord, Results, describe_failure
from .timing import time_step

__all__ = ["AppScenario", "AppConfig", "VARIANTS", "run_app"]

#: Variants by name: first BN -> ZCABatchNorm with one group (PAPER.md's decorrelated-BN setup),
#: every BN -> ZCABatchNorm in groups of 16 channels, and avgpool + fc -> ISqrtCovHead.
VARIANTS = ("zca-first", "zca-all", "head")

ModelEdit = Callable[[nn.Module], nn.Module]


@dataclass(frozen=True)
class AppScenario:
    """Input of a training step: ``batch`` images of ``3 x image_size²``, ``num_classes`` labels."""

    name: str
    batch: int
    image_size: int
    num_classes: int


@dataclass
class AppConfig:
    """Scenarios, methods and repeats of the application benchmark."""

    device: torch.device
    backends: list[str]
    #: CIFAR-like by default (PAPER.md's decorrelated-BN setup: batch 128, 32x32, 10 classes).
    zca: AppScenario
    #: ImageNet-like by default: the covariance head needs a feature map with many positions.
    head: AppScenario
    reduced_dim: int = 256
    zca_group_size: int = 16
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    repeats: int = 10
    warmup: int = 3
    max_seconds: float = 5.0
    tf32: bool = False
    seed: int = 0
    time_budget: float | None = None

    def describe(self) -> dict[str, object]:
        out = dict(vars(self))
        out["device"] = str(self.device)
        out["zca"], out["head"] = vars(self.zca), vars(self.head)
        return out


def _resnet18(num_classes: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-18; for CIFAR-sized inputs with the CIFAR stem (3x3 stride-1 conv,
    no max-pool) of the decorrelated-BN experiments, so the first BatchNorm sees 32x32 maps."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    if image_size <= 32:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def _first_bn_to_zca(backend: str) -> ModelEdit:
    def edit(model: nn.Module) -> nn.Module:
        from ..layers import convert_zca_batchnorm

        # DBN: only the first BatchNorm is whitened, all its 64 channels as one group.
        return convert_zca_batchnorm(model, first_only=True, group_size=None, backend=backend)

    return edit


def _all_bn_to_zca(backend: str, group_size: int) -> ModelEdit:
    def edit(model: nn.Module) -> nn.Module:
        from ..layers import convert_zca_batchnorm

        return convert_zca_batchnorm(model, group_size=group_size, backend=backend)

    return edit


def _pool_to_head(backend: str, num_classes: int, reduced_dim: int) -> ModelEdit:
    def edit(model: nn.Module) -> nn.Module:
        from ..layers import attach_isqrt_cov_head

        # last_stride=2 keeps torchvision's backbone, so the ratio is the head's cost against
        # pooling + fc alone (iSQRT-COV's stride-1 last stage would also quadruple layer4's work).
        return attach_isqrt_cov_head(model, num_classes, reduced_dim=reduced_dim, last_stride=2, backend=backend)

    return edit


def _training_step(model: nn.Module, scenario: AppScenario, device: torch.device, seed: int) -> Callable[[], object]:
    """One SGD step on a fixed random batch: forward, cross-entropy, backward, update."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(scenario.batch, 3, scenario.image_size, scenario.image_size, generator=gen).to(device)
    labels = torch.randint(scenario.num_classes, (scenario.batch,), generator=gen).to(device)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _plan(config: AppConfig) -> list[tuple[AppScenario, str, str | None, ModelEdit | None]]:
    """(scenario, variant label, backend, model edit) per row; ``None`` edit: the baseline.

    Ordered so that a time budget cuts the costliest rows (every BatchNorm whitened) first.
    """
    plan: list[tuple[AppScenario, str, str | None, ModelEdit | None]] = []
    if {"zca-first", "zca-all"} & set(config.variants):
        plan.append((config.zca, "BatchNorm2d (baseline)", None, None))
    if "zca-first" in config.variants:
        label = "first BN → ZCABatchNorm (one 64-channel group)"
        plan += [(config.zca, label, b, _first_bn_to_zca(b)) for b in config.backends]
    if "head" in config.variants:
        plan.append((config.head, "avgpool + fc (baseline)", None, None))
        label = f"avgpool + fc → ISqrtCovHead (reduced_dim={config.reduced_dim})"
        plan += [
            (config.head, label, b, _pool_to_head(b, config.head.num_classes, config.reduced_dim))
            for b in config.backends
        ]
    if "zca-all" in config.variants:
        label = f"all BN → ZCABatchNorm (groups of {config.zca_group_size})"
        plan += [(config.zca, label, b, _all_bn_to_zca(b, config.zca_group_size)) for b in config.backends]
    return plan


def _measure(config: AppConfig, scenario: AppScenario, edit: ModelEdit | None, record: AppRecord) -> None:
    try:
        torch.manual_seed(config.seed)
        model = _resnet18(scenario.num_classes, scenario.image_size)
        if edit is not None:
            model = edit(model)
        step = _training_step(model, scenario, config.device, config.seed)
        timing = time_step(step, config.device, warmup=config.warmup, repeats=config.repeats, max_seconds=config.max_seconds)
        record.median_ms, record.min_ms, record.repeats = timing.median_ms, timing.min_ms, timing.repeats
    except Exception as exc:  # a layer not written yet, or one that fails, is a table row
        record.status = describe_failure(exc)
    finally:
        if config.device.type == "cuda":
            torch.cuda.empty_cache()


def run_app(config: AppConfig, *, progress: bool = True) -> Results:
    """Time every planned training step; ratios against the scenario's baseline."""
    configure_tf32(config.tf32)
    results = Results(
        meta=describe_environment(config.device, torch.float32, config.tf32) | {"config": config.describe()},
        notes=[
            "Training step = forward, cross-entropy, backward and an SGD update of torchvision's "
            "ResNet-18 (no weights) on a fixed random batch; median of up to "
            f"{config.repeats} steps after up to {config.warmup} warm-up steps (each capped at "
            f"{config.max_seconds:g} s). Ratios are against the scenario's unmodified network.",
        ],
    )
    plan = _plan(config)
    bar = make_progress(len(plan), progress)
    end = None if config.time_budget is None else time.monotonic() + config.time_budget
    baselines: dict[str, float] = {}
    try:
        for scenario, variant, backend, edit in plan:
            bar.set_description_str(f"{scenario.name} {variant} {backend or ''}")
            record = AppRecord(scenario.name, variant, backend, scenario.batch, scenario.image_size, scenario.num_classes)
            if end is not None and time.monotonic() > end:
                record.status = "skipped: time budget"
            else:
                _measure(config, scenario, edit, record)
            if edit is None and record.status == OK:
                baselines[scenario.name] = record.median_ms
            base = baselines.get(scenario.name)
            if base and record.status == OK:
                record.ratio_vs_baseline = record.median_ms / base
            results.app.append(record)
            bar.update()
    finally:
        bar.close()
    return results
