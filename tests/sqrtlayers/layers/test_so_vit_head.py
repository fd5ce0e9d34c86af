"""SecondOrderViTHead and attach_so_vit_head on torchvision's VisionTransformer."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer

from sqrtlayers.layers import SecondOrderViT, SecondOrderViTHead, attach_so_vit_head, triu_dim


def tokens(n: int = 3, length: int = 17, dim: int = 32) -> torch.Tensor:
    return torch.randn(n, length, dim, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("fusion", ["sum", "mean"])
def test_logit_fusion(fusion: str) -> None:
    head = SecondOrderViTHead(32, 5, reduced_dim=6, fusion=fusion, backend="eigh")
    x = tokens()
    token_logits = head.token_classifier(x[:, 0])
    covariance_logits = head.covariance_classifier(head.pool(head.reduce(x[:, 1:])))
    expected = token_logits + covariance_logits
    if fusion == "mean":
        expected = expected / 2
    assert head.covariance_classifier.in_features == triu_dim(6) == 21
    torch.testing.assert_close(head(x), expected, rtol=0, atol=0)


def test_concat_fusion_uses_one_classifier() -> None:
    head = SecondOrderViTHead(32, 5, reduced_dim=6, fusion="concat", backend="eigh")
    x = tokens()
    features = torch.cat([x[:, 0], head.pool(head.reduce(x[:, 1:]))], dim=-1)
    assert head.classifier.in_features == 32 + 21 and not hasattr(head, "token_classifier")
    torch.testing.assert_close(head(x), head.classifier(features), rtol=0, atol=0)


@pytest.mark.parametrize("fusion", ["sum", "mean", "concat"])
def test_gradients_reach_both_branches(fusion: str) -> None:
    head = SecondOrderViTHead(32, 5, reduced_dim=6, fusion=fusion)
    x = tokens().requires_grad_()
    head(x).square().sum().backward()
    assert x.grad[:, 0].abs().sum() > 0, "class-token branch"
    assert x.grad[:, 1:].abs().sum() > 0, "visual-token branch"
    assert head.reduce[0].weight.grad.abs().sum() > 0


def test_head_errors_echo_the_value() -> None:
    with pytest.raises(ValueError, match=r"fusion must be one of \['sum', 'mean', 'concat'\], got 'max'"):
        SecondOrderViTHead(32, 5, fusion="max")
    with pytest.raises(ValueError, match="reduced_dim must be >= 1, got 0"):
        SecondOrderViTHead(32, 5, reduced_dim=0)
    head = SecondOrderViTHead(32, 5)
    with pytest.raises(ValueError, match=r"expected tokens of shape \(N, 1 \+ L, 32\) with L >= 1, got \(2, 1, 32\)"):
        head(torch.randn(2, 1, 32))
    with pytest.raises(ValueError, match=r"got \(2, 5, 16\)"):
        head(torch.randn(2, 5, 16))


def small_vit(image_size: int = 32, patch_size: int = 8, num_layers: int = 2) -> VisionTransformer:
    return VisionTransformer(
        image_size=image_size, patch_size=patch_size, num_layers=num_layers, num_heads=2, hidden_dim=32, mlp_dim=64
    )


@pytest.mark.parametrize(("image_size", "patch_size", "num_layers"), [(32, 8, 2), (48, 16, 3)])
def test_attached_head_sees_torchvisions_encoder_output(image_size: int, patch_size: int, num_layers: int) -> None:
    vit = small_vit(image_size, patch_size, num_layers).eval()
    images = torch.randn(2, 3, image_size, image_size)
    encoded = []
    handle = vit.encoder.register_forward_hook(lambda mod, args, out: encoded.append(out))
    vit(images)  # torchvision's own forward, which keeps only the class token afterwards
    handle.remove()

    model = attach_so_vit_head(vit, 10, reduced_dim=8)
    assert isinstance(model, SecondOrderViT) and isinstance(model.vit.heads, nn.Identity)
    seen = []
    model.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    assert model(images).shape == (2, 10)
    assert seen[0].shape == (2, 1 + (image_size // patch_size) ** 2, 32)
    torch.testing.assert_close(seen[0], encoded[0], rtol=0, atol=0)


def test_attached_model_trains_end_to_end() -> None:
    model = attach_so_vit_head(small_vit(), 10, reduced_dim=8, fusion="sum")
    logits = model(torch.randn(4, 3, 32, 32))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert unused == [], "every parameter must get a gradient (DDP without find_unused_parameters)"
    assert model.vit.class_token.grad.abs().sum() > 0 and model.vit.conv_proj.weight.grad.abs().sum() > 0
    assert model.head.token_classifier.weight.grad.abs().sum() > 0
    assert model.head.covariance_classifier.weight.grad.abs().sum() > 0


def test_attach_errors() -> None:
    with pytest.raises(TypeError, match="expected a torchvision VisionTransformer, got Linear without"):
        attach_so_vit_head(nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match=r"head.embed_dim must equal vit.hidden_dim \(32\), got 16"):
        SecondOrderViT(small_vit(), SecondOrderViTHead(16, 10))
