"""convert_zca_batchnorm keeps the model it converts: torchvision and timm models with plain BatchNorm
and with norm-act layers, SyncBatchNorm's intent, lazy layers, and the layers it must refuse.

For every model: a freshly converted model in eval mode computes what the original did (running
statistics set to non-trivial values first), every other module (activations, dropouts) is still
in the tree, one training step is finite, and the state_dict round-trips through
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable

import pytest
import timm
import torch
from timm.layers import BatchNormAct2d
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.models import resnet18

from sqrtlayers.layers import ZCABatchNorm, ZCABatchNormAct, convert_zca_batchnorm, set_zca_sync

from .single_thread import one_thread  # noqa: F401 (the fixture, by name)


class ScaledActNorm(nn.BatchNorm2d):
    """A norm-act layer that is not timm's: BatchNorm, then a scale, then an activation (to show
    that conversion recognises the layout, not the class name)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.scale = nn.Conv2d(num_features, num_features, 1, groups=num_features, bias=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.scale(super().forward(x)))


def small_cnn_with_custom_norm_act() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1),
        ScaledActNorm(12),
        nn.Conv2d(12, 12, 3, stride=2),
        BatchNormAct2d(12, act_layer=nn.PReLU, drop_layer=nn.Dropout),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 10),
    )


MODELS: dict[str, Callable[[], nn.Module]] = {
    "torchvision-resnet18": lambda: resnet18(num_classes=10),
    "timm-resnet10t": lambda: timm.create_model("resnet10t", pretrained=False, num_classes=10),
    "timm-mobilenetv3-norm-act": lambda: timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=10),
    "custom-norm-act": small_cnn_with_custom_norm_act,
}
INPUT = (8, 3, 32, 32)

# Whole models of small layers on 32x32 input: hundreds of tiny kernels.
pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str) -> nn.Module:
    """The model with every BatchNorm given non-trivial running statistics and affine parameters."""
    torch.manual_seed(0)
    model = MODELS[name]()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
                m.num_batches_tracked.fill_(7)
    return model


def convert(model: nn.Module) -> nn.Module:
    return convert_zca_batchnorm(model, group_size=8)


def other_modules(model: nn.Module) -> Counter:
    """Every module that is not a normalisation layer, by type: what conversion must keep."""
    return Counter(type(m) for m in model.modules() if not isinstance(m, (_BatchNorm, ZCABatchNorm)))


def probe() -> torch.Tensor:
    return torch.randn(INPUT, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", list(MODELS))
def test_converted_model_in_eval_computes_what_the_original_did(name: str) -> None:
    model = build(name).eval()
    x = probe()
    before = model(x)
    kept = other_modules(model)
    converted = convert(model)
    assert not any(isinstance(m, _BatchNorm) for m in converted.modules())
    assert other_modules(converted) == kept  # activations, dropouts, scales: all still there
    out = converted(x)
    assert before.abs().max() > 0.1  # the comparison is not between two near-zero outputs
    torch.testing.assert_close(out, before, rtol=1e-4, atol=1e-5)


def test_norm_act_layers_become_zca_norm_act_with_their_modules() -> None:
    model = build("custom-norm-act")
    act, drop, scale = model[3].act, model[3].drop, model[1].scale
    convert(model)
    assert isinstance(model[1], ZCABatchNormAct) and isinstance(model[3], ZCABatchNormAct)
    assert [n for n, _ in model[1].named_children()] == ["scale", "act"]
    assert model[3].act is act and model[3].drop is drop and model[1].scale is scale
    # timm mobilenet: every BatchNormAct2d (34 of them) kept its activation module.
    timm_model = build("timm-mobilenetv3-norm-act")
    acts = [type(m.act) for m in timm_model.modules() if isinstance(m, BatchNormAct2d)]
    convert(timm_model)
    assert [type(m.act) for m in timm_model.modules() if isinstance(m, ZCABatchNormAct)] == acts
    assert len(acts) == 34 and nn.Hardswish in acts and nn.ReLU in acts


@pytest.mark.parametrize("name", list(MODELS))
def test_converted_model_trains_one_finite_step_and_round_trips(name: str) -> None:
    model = convert(build(name)).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = nn.functional.cross_entropy(model(probe()), torch.arange(INPUT[0]) % 10)
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    layers = [m for m in model.modules() if isinstance(m, ZCABatchNorm)]
    assert layers and all(int(m.num_batches_tracked) == 8 for m in layers)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = convert(build(name))
    fresh.load_state_dict(state)
    x = probe()
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x), rtol=0, atol=0)


def test_sync_batchnorm_keeps_synced_statistics_and_its_process_group() -> None:
    group = object()  # stands for a ProcessGroup: conversion only passes it on
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4, process_group=group))
    convert_zca_batchnorm(model)
    assert isinstance(model[1], ZCABatchNorm) and model[1].sync_stats and model[1].process_group is group
    # An explicit option still wins; timm's synchronised norm-act layer keeps its modules too.
    assert not convert_zca_batchnorm(nn.SyncBatchNorm(4), sync_stats=False).sync_stats
    timm_sync = timm.layers.convert_sync_batchnorm(nn.Sequential(BatchNormAct2d(4, act_layer=nn.ReLU)))
    converted = convert_zca_batchnorm(timm_sync)[0]
    assert isinstance(converted, ZCABatchNormAct) and converted.sync_stats and isinstance(converted.act, nn.ReLU)


def test_lazy_batchnorm_asks_for_one_forward_pass_first() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.LazyBatchNorm2d())
    with pytest.raises(ValueError, match=r"cannot convert LazyBatchNorm2d '1': .* run one forward pass"):
        convert_zca_batchnorm(model)
    assert isinstance(model[1], nn.LazyBatchNorm2d)  # nothing changed
    model(torch.randn(2, 3, 4, 4))
    assert convert_zca_batchnorm(model)[1].num_features == 4


class ActBeforeNorm(nn.BatchNorm2d):
    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.act(x))


class DoubledNorm(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


class ExtraParameterNorm(nn.BatchNorm2d):
    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.gate = nn.Parameter(torch.ones(num_features))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (ActBeforeNorm(4), r"ActBeforeNorm 'block': its forward is not batch norm followed by .*\['act'\]"),
        (DoubledNorm(4), r"DoubledNorm 'block': its forward is not batch norm followed by its child modules \[\]"),
        (ExtraParameterNorm(4), r"ExtraParameterNorm 'block': it holds \['gate'\] beyond BatchNorm's"),
    ],
    ids=["act-before-norm", "changed-forward", "extra-parameter"],
)
def test_subclasses_that_cannot_be_kept_are_refused_by_name(layer: nn.Module, message: str) -> None:
    model = nn.Sequential()
    model.add_module("block", layer)
    with pytest.raises(TypeError, match=message):
        convert_zca_batchnorm(model)
    # The probe ran on a copy: the layer itself is untouched.
    assert model.block is layer and layer.training and layer.running_mean.eq(0).all()
    # predicate= leaves such a layer out, as the message says.
    assert convert_zca_batchnorm(model, predicate=lambda name, _: name != "block").block is layer


def test_group_size_larger_than_a_layer_whitens_it_as_one_group() -> None:
    model = convert_zca_batchnorm(nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(20)), group_size=8)
    assert (model[0].group_size, model[0].num_groups) == (3, 1)
    assert (model[1].group_size, model[1].num_groups) == (8, 3)
    # One rule for the conversion and the layer itself.
    assert (ZCABatchNorm(8, group_size=16).group_size, ZCABatchNorm(8, group_size=16).num_groups) == (8, 1)


def test_default_groups_are_16_channels_and_none_whitens_each_layer_whole() -> None:
    model = convert_zca_batchnorm(nn.Sequential(nn.BatchNorm2d(64), nn.BatchNorm2d(8)))
    assert [(m.group_size, m.num_groups) for m in model] == [(16, 4), (8, 1)]
    model = convert_zca_batchnorm(nn.Sequential(nn.BatchNorm2d(64)), group_size=None)
    assert (model[0].group_size, model[0].num_groups) == (64, 1)


def test_converting_a_model_without_batchnorm_warns() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.GroupNorm(1, 3))
    with pytest.warns(UserWarning, match="found no BatchNorm layer to convert in Sequential"):
        assert convert_zca_batchnorm(model) is model
    with pytest.warns(UserWarning, match="that the predicate chose"):
        convert_zca_batchnorm(nn.Sequential(nn.BatchNorm1d(3)), predicate=lambda name, layer: False)


def test_layers_that_are_not_batchnorm_subclasses_are_left_alone() -> None:
    from torchvision.ops import FrozenBatchNorm2d

    frozen, group_norm = FrozenBatchNorm2d(4), nn.GroupNorm(2, 4)
    model = convert_zca_batchnorm(nn.Sequential(frozen, group_norm))
    assert model[0] is frozen and model[1] is group_norm


# -- choosing layers, options, sync switch --------------------------------------------------------


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_convert_first_batchnorm_of_resnet18() -> None:
    model = resnet18(num_classes=10)
    old = model.bn1
    with torch.no_grad():
        old.running_mean.uniform_(-1, 1)
    model = convert_zca_batchnorm(model, first_only=True, group_size=16)
    assert isinstance(model.bn1, ZCABatchNorm) and model.bn1.group_size == 16
    assert count(model, ZCABatchNorm) == 1 and count(model, nn.BatchNorm2d) == 19
    assert model.bn1.weight is old.weight and model.bn1.bias is old.bias
    torch.testing.assert_close(model.bn1.running_mean, old.running_mean)

    x = torch.randn(4, 3, 32, 32)
    loss = model(x).logsumexp(-1).mean()
    loss.backward()
    assert torch.isfinite(loss) and model.bn1.weight.grad.abs().sum() > 0 and model.conv1.weight.grad.abs().sum() > 0


def test_convert_keeps_eps_counter_and_mode() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, eps=1e-3), nn.ReLU())
    for _ in range(3):
        model(torch.randn(16, 3, 6, 6))
    model.eval()
    converted = convert_zca_batchnorm(model, group_size=4, backend="eigh")
    assert isinstance(converted[1], ZCABatchNorm) and not converted[1].training
    assert converted[1].eps == 1e-3 and int(converted[1].num_batches_tracked) == 3


def test_convert_chooses_layers_by_predicate_and_forwards_options() -> None:
    model = convert_zca_batchnorm(
        resnet18(num_classes=10), predicate=lambda name, _: name.startswith("layer1."), backend="eigh", sync_stats=True
    )
    converted = [name for name, m in model.named_modules() if isinstance(m, ZCABatchNorm)]
    assert converted == ["layer1.0.bn1", "layer1.0.bn2", "layer1.1.bn1", "layer1.1.bn2"]
    assert all(m.backend.name == "eigh" and m.sync_stats for m in model.modules() if isinstance(m, ZCABatchNorm))
    everything = convert_zca_batchnorm(resnet18(num_classes=10))
    assert count(everything, ZCABatchNorm) == 20 and count(everything, nn.BatchNorm2d) == 0
    assert isinstance(convert_zca_batchnorm(nn.BatchNorm1d(3)), ZCABatchNorm)
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['affine'\]"):
        convert_zca_batchnorm(nn.BatchNorm1d(3), affine=False)


def test_set_zca_sync_turns_every_layer_on_and_off() -> None:
    model = convert_zca_batchnorm(resnet18(num_classes=10))
    assert set_zca_sync(model) is model
    assert all(m.sync_stats for m in model.modules() if isinstance(m, ZCABatchNorm))
    set_zca_sync(model, False)
    assert not any(m.sync_stats for m in model.modules() if isinstance(m, ZCABatchNorm))
