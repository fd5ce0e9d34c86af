"""ISqrtCovHead and attach_isqrt_cov_head on torchvision ResNets."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.resnet import Bottleneck, ResNet

from sqrtlayers.layers import CovariancePooling, ISqrtCovHead, attach_isqrt_cov_head, triu_dim


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
    with pytest.raises(ValueError, match="reduced_dim must be >= 1, got 0"):
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
    message = r"expected a torchvision ResNet, got Linear without \['layer4', 'avgpool', 'fc'\]"
    with pytest.raises(TypeError, match=message):
        attach_isqrt_cov_head(nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match="last_stride must be 1 or 2, got 3"):
        attach_isqrt_cov_head(resnet18(), 10, last_stride=3)
    model = attach_isqrt_cov_head(resnet18(), 10, reduced_dim=8)
    with pytest.raises(TypeError, match="expected resnet.fc to be nn.Linear"):
        attach_isqrt_cov_head(model, 10)
