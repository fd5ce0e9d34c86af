"""ISqrtCovHead, and attach_isqrt_cov_head on torchvision ResNets and timm CNNs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.resnet import Bottleneck, ResNet

from sqrtlayers.layers import CovariancePooling, ISqrtCovHead, ISqrtCovNet, attach_isqrt_cov_head, triu_dim


def test_head_structure_and_output() -> None:
    head = ISqrtCovHead(64, 7, reduced_dim=16, dropout=0.5)
    conv, norm, relu = head.reduce
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.bias is None
    assert isinstance(norm, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    assert isinstance(head.pool, CovariancePooling) and head.pool.backend.name == "ns"
    assert head.dropout.p == 0.5 and head.fc.in_features == triu_dim(16) == 136
    x = torch.randn(4, 64, 5, 5, requires_grad=True)
    logits = head(x)
    assert logits.shape == (4, 7)
    logits.sum().backward()
    assert conv.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_head_computes_reduce_pool_classify() -> None:
    head = ISqrtCovHead(8, 3, reduced_dim=4, backend="eigh").eval()
    x = torch.randn(2, 8, 4, 4)
    expected = head.fc(head.pool(head.reduce(x)))
    torch.testing.assert_close(head(x), expected, rtol=0, atol=0)
    no_reduction = ISqrtCovHead(8, 3, reduced_dim=None)
    assert isinstance(no_reduction.reduce, nn.Identity) and no_reduction.fc.in_features == triu_dim(8)


def test_head_errors_echo_the_value() -> None:
    with pytest.raises(ValueError, match="reduced_dim must be an int >= 1, got 0"):
        ISqrtCovHead(8, 3, reduced_dim=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        ISqrtCovHead(8, 3, dropout=1.0)


def pooled_size(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    seen = []
    handle = model.avgpool.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[-2:]))
    model(x)
    handle.remove()
    return tuple(seen[0])


@pytest.mark.parametrize(("last_stride", "size"), [(1, (4, 4)), (2, (2, 2))])
def test_attach_to_resnet18(last_stride: int, size: tuple[int, int]) -> None:
    model = attach_isqrt_cov_head(resnet18(), 10, reduced_dim=16, last_stride=last_stride)
    assert isinstance(model.avgpool, ISqrtCovHead) and isinstance(model.fc, nn.Identity)
    assert model.avgpool.reduce[0].in_channels == 512
    x = torch.randn(2, 3, 64, 64)
    assert pooled_size(model.eval(), x) == size
    model.train()
    logits = model(x)
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, torch.tensor([1, 2])).backward()
    assert model.conv1.weight.grad.abs().sum() > 0 and model.avgpool.fc.weight.grad.abs().sum() > 0


def test_attach_to_a_bottleneck_resnet_removes_the_last_stride() -> None:
    model = attach_isqrt_cov_head(ResNet(Bottleneck, [1, 1, 1, 1]), 5, reduced_dim=8, backend="mpa-lya")
    first = model.layer4[0]
    assert first.conv2.stride == (1, 1) and first.downsample[0].stride == (1, 1)
    assert model.avgpool.reduce[0].in_channels == 2048 and model.avgpool.pool.backend.name == "mpa-lya"
    assert pooled_size(model.eval(), torch.randn(1, 3, 64, 64)) == (4, 4)


def test_attach_errors() -> None:
    message = r"or a torchvision ResNet, got Linear without \['layer4', 'avgpool', 'fc'\]"
    with pytest.raises(TypeError, match=message):
        attach_isqrt_cov_head(nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match="last_stride must be 1, 2 or None, got 3"):
        attach_isqrt_cov_head(resnet18(), 10, last_stride=3)
    model = attach_isqrt_cov_head(resnet18(), 10, reduced_dim=8)
    with pytest.raises(TypeError, match="expected resnet.fc to be nn.Linear"):
        attach_isqrt_cov_head(model, 10)


timm = pytest.importorskip("timm")


@pytest.mark.parametrize(("name", "channels"), [("resnet18", 512), ("convnext_atto", 320)])
def test_attach_to_timm_cnns_through_their_interface(name: str, channels: int) -> None:
    model = attach_isqrt_cov_head(timm.create_model(name, pretrained=False), 10, reduced_dim=8)
    assert isinstance(model, ISqrtCovNet) and model.head.in_channels == channels
    seen = []
    model.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 10) and seen[0].shape == (2, channels, 2, 2)
    nn.functional.cross_entropy(logits, torch.tensor([1, 2])).backward()
    # ConvNeXt's head norm stays in use on the unpooled map: nothing is left without a gradient.
    unused = [key for key, p in model.named_parameters() if p.grad is None]
    assert unused == [], "every parameter must get a gradient (DDP without find_unused_parameters)"


def test_timm_features_are_the_ones_timm_pools() -> None:
    backbone = timm.create_model("resnet18", pretrained=False).eval()
    images = torch.randn(2, 3, 64, 64)
    pooled = backbone.forward_head(backbone.forward_features(images), pre_logits=True)
    model = attach_isqrt_cov_head(backbone, 10, reduced_dim=8).eval()
    seen = []
    model.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    model(images)
    torch.testing.assert_close(seen[0].mean((-2, -1)), pooled)


class ChannelsLastTimmStub(nn.Module):
    """The smallest module with timm's interface whose features are (N, H, W, C), like Swin's."""

    num_features = 6
    output_fmt = "NHWC"

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 6, 1)
        self.reset_with = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.reset_with = (num_classes, global_pool)


def test_timm_channels_last_features_reach_the_head_channels_first() -> None:
    stub = ChannelsLastTimmStub()
    model = attach_isqrt_cov_head(stub, 3, reduced_dim=None, backend="eigh")
    assert stub.reset_with == (0, "")
    images = torch.randn(2, 3, 5, 4)
    torch.testing.assert_close(model(images), model.head(stub.proj(images)), rtol=0, atol=0)


def test_timm_errors_leave_the_model_unchanged() -> None:
    backbone = timm.create_model("resnet18", pretrained=False)
    with pytest.raises(ValueError, match="reduced_dim must be an int >= 1, got 0"):
        attach_isqrt_cov_head(backbone, 10, reduced_dim=0)
    assert isinstance(backbone.fc, nn.Linear) and backbone.fc.out_features == 1000
    message = r"last_stride applies to torchvision ResNets, got last_stride=1 for the timm model ResNet"
    with pytest.raises(ValueError, match=message):
        attach_isqrt_cov_head(backbone, 10, last_stride=1)
