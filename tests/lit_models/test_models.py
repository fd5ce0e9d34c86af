"""The networks: torchvision-based, any input size and channel count, layers where stated."""

import pytest
import torch
from torch import nn
from torchvision.models import ResNet, VisionTransformer
from torchvision.models.resnet import BasicBlock, Bottleneck

from lit_models.models import ISqrtCovResNet, SmallResNet, SoViT, ZCAResNet
from lit_models.models.resnet_stem import replace_resnet_stem, resnet_spec
from sqrtlayers.layers import CovariancePooling, ISqrtCovHead, ZCABatchNorm


@pytest.fixture(autouse=True)
def _offline(no_network):
    """No network is built from downloaded weights."""


def count(network: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in network.modules())


def backends_of(network: nn.Module) -> set[str]:
    return {m.backend.name for m in network.modules() if hasattr(m, "backend")}


@pytest.mark.parametrize(
    ("in_channels", "size"), [(1, 16), (3, 32), (4, 40)], ids=["1x16", "3x32", "4x40"]
)
@pytest.mark.parametrize(
    "build",
    [
        lambda c: SmallResNet(7, c, widths=(8, 16), blocks=(1, 1), reduced_dim=8),
        lambda c: ZCAResNet(7, c, group_size=16),
        lambda c: ISqrtCovResNet(7, c, arch="resnet18", small_input=True, reduced_dim=8),
    ],
    ids=["small_resnet", "zca_resnet", "isqrt_cov_resnet"],
)
def test_convolutional_networks_take_any_size_and_channels(build, in_channels, size):
    network = build(in_channels)
    logits = network(torch.randn(2, in_channels, size, size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in network.parameters())


@pytest.mark.parametrize(("in_channels", "size", "patch"), [(1, 16, 4), (3, 32, 8), (2, 24, 6)])
def test_so_vit_takes_any_size_and_channels(in_channels, size, patch):
    network = SoViT(5, size, in_channels, patch_size=patch, num_layers=1, num_heads=2,
                    hidden_dim=16, mlp_dim=32, reduced_dim=4, backend="eigh")
    assert isinstance(network.vit, VisionTransformer)
    assert network.vit.conv_proj.in_channels == in_channels
    logits = network(torch.randn(2, in_channels, size, size))
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in network.parameters())


def test_so_vit_defaults_are_so_vit_7():
    network = SoViT(10)
    vit = network.vit
    assert (vit.image_size, vit.patch_size, vit.hidden_dim, vit.mlp_dim) == (224, 16, 256, 512)
    assert len(vit.encoder.layers) == 7
    assert vit.encoder.layers[0].self_attention.num_heads == 4
    assert network.head.covariance_classifier.in_features == 48 * 49 // 2
    assert backends_of(network) == {"mpa-lya"}


def test_so_vit_rejects_indivisible_image_size():
    with pytest.raises(ValueError, match="image_size must be a multiple of patch_size \\(16\\), got 100"):
        SoViT(10, image_size=100)


@pytest.mark.parametrize(("arch", "block", "layers"), [("resnet18", BasicBlock, [2, 2, 2, 2]),
                                                        ("resnet50", Bottleneck, [3, 4, 6, 3])])
def test_zca_resnet_whitens_only_the_first_norm(arch, block, layers):
    network = ZCAResNet(10, arch=arch, backend="ns")
    assert isinstance(network, ResNet)
    assert isinstance(network.layer1[0], block) and [len(network.layer1), len(network.layer3)] == layers[::2]
    assert isinstance(network.bn1, ZCABatchNorm)
    assert count(network, ZCABatchNorm) == 1
    assert backends_of(network) == {"ns"}
    # The CIFAR stem.
    assert network.conv1.kernel_size == (3, 3) and network.conv1.stride == (1, 1)
    assert isinstance(network.maxpool, nn.Identity)


def test_zca_resnet_all_norms_with_groups():
    network = ZCAResNet(10, zca_layers="all", group_size=16, momentum=0.2, eps=1e-3)
    assert count(network, nn.BatchNorm2d) == 0
    layers = [m for m in network.modules() if isinstance(m, ZCABatchNorm)]
    assert len(layers) == 20
    assert {(m.group_size, m.momentum, m.eps) for m in layers} == {(16, 0.2, 1e-3)}


def test_zca_resnet_imagenet_stem():
    network = ZCAResNet(10, in_channels=1, small_input=False)
    assert network.conv1.kernel_size == (7, 7) and network.conv1.in_channels == 1
    assert isinstance(network.maxpool, nn.MaxPool2d)


def test_isqrt_cov_resnet_head_and_last_stride():
    network = ISqrtCovResNet(10, arch="resnet50", backend="mpa-lya")
    assert isinstance(network.avgpool, ISqrtCovHead) and isinstance(network.fc, nn.Identity)
    assert network.avgpool.fc.in_features == 256 * 257 // 2
    assert backends_of(network) == {"mpa-lya"}
    assert all(m.stride == (1, 1) for m in network.layer4.modules() if isinstance(m, nn.Conv2d))
    features = network.layer4(network.layer3(network.layer2(network.layer1(
        network.maxpool(network.relu(network.bn1(network.conv1(torch.randn(1, 3, 64, 64)))))))))
    assert features.shape[-2:] == (4, 4)  # stride 16 overall: the last stage keeps stride 1


def test_small_resnet_default_is_zca_stem_and_covariance_head():
    network = SmallResNet(10)
    assert isinstance(network.stem[1], ZCABatchNorm)
    assert count(network, ZCABatchNorm) == 1
    assert isinstance(network.head, ISqrtCovHead)
    assert network.head.fc.in_features == 32 * 33 // 2
    assert backends_of(network) == {"mpa-lya"}
    assert [len(stage) for stage in network.stages] == [1, 1, 1]


def test_small_resnet_first_order_baseline():
    network = SmallResNet(10, zca_layers="none", head="average")
    assert count(network, ZCABatchNorm) == 0
    assert count(network, CovariancePooling) == 0
    assert isinstance(network.stem[1], nn.BatchNorm2d)


def test_small_resnet_all_zca_layers():
    network = SmallResNet(10, widths=(8, 16), blocks=(2, 1), zca_layers="all", backend="eigh")
    assert count(network, nn.BatchNorm2d) == 0
    assert backends_of(network) == {"eigh"}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SmallResNet(10, zca_layers="some"), "zca_layers must be 'first', 'all' or 'none', got 'some'"),
        (lambda: SmallResNet(10, head="max"), "head must be 'covariance' or 'average', got 'max'"),
        (lambda: SmallResNet(10, widths=(8, 16), blocks=(1,)), "widths and blocks must be non-empty"),
        (lambda: SmallResNet(10, widths=(0,), blocks=(1,)), "must be >= 1"),
        (lambda: ZCAResNet(10, zca_layers="none"), "zca_layers must be 'first' or 'all', got 'none'"),
        (lambda: ZCAResNet(10, arch="resnet19"), "unknown arch 'resnet19'; choose one of"),
        (lambda: ISqrtCovResNet(10, in_channels=0), "in_channels must be >= 1, got 0"),
    ],
)
def test_bad_arguments_raise(build, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        build()


def test_resnet_spec_and_stem_helpers():
    assert resnet_spec("resnet152") == (Bottleneck, [3, 8, 36, 3])
    network = ResNet(BasicBlock, [1, 1, 1, 1])
    stem = network.conv1
    replace_resnet_stem(network)
    assert network.conv1 is stem  # nothing to change for 3-channel ImageNet input
