"""SecondOrderViTHead, and attach_so_vit_head on torchvision and timm vision transformers."""

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
    with pytest.raises(ValueError, match="reduced_dim must be an int >= 1, got 0"):
        SecondOrderViTHead(32, 5, reduced_dim=0)
    with pytest.raises(ValueError, match="num_prefix_tokens must be an int >= 1, got 0"):
        SecondOrderViTHead(32, 5, num_prefix_tokens=0)
    head = SecondOrderViTHead(32, 5, num_prefix_tokens=2)
    message = r"tokens must be \(N, 2 \+ L, embed_dim\) with embed_dim=32 and L >= 1, got shape \(2, 2, 32\)"
    with pytest.raises(ValueError, match=message):
        head(torch.randn(2, 2, 32))


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
    with pytest.raises(TypeError, match="or a torchvision VisionTransformer, got Linear without"):
        attach_so_vit_head(nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match=r"head.embed_dim must equal the token width of vit \(32\), got 16"):
        SecondOrderViT(small_vit(), SecondOrderViTHead(16, 10))
    with pytest.raises(ValueError, match=r"head.num_prefix_tokens must equal that of vit \(1\), got 2"):
        SecondOrderViT(small_vit(), SecondOrderViTHead(32, 10, num_prefix_tokens=2))


timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    ("name", "options", "prefix", "length"),
    [
        ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 4}, 1, 64),
        ("deit_tiny_patch16_224", {"img_size": 32, "patch_size": 8}, 1, 16),
        ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2, "reg_tokens": 4}, 5, 16),
    ],
    ids=["vit_tiny", "deit_tiny", "vit_tiny_registers"],
)
def test_attach_to_timm_vision_transformers(name: str, options: dict, prefix: int, length: int) -> None:
    vit = timm.create_model(name, pretrained=False, **options).eval()
    images = torch.randn(2, 3, 32, 32)
    expected_tokens = vit.forward_features(images)
    model = attach_so_vit_head(vit, 10, reduced_dim=8)
    assert model.head.embed_dim == 192 and model.head.num_prefix_tokens == prefix
    seen = []
    model.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    logits = model(images)
    assert logits.shape == (2, 10) and seen[0].shape == (2, prefix + length, 192)
    torch.testing.assert_close(seen[0], expected_tokens, rtol=0, atol=0)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    unused = [key for key, p in model.named_parameters() if p.grad is None]
    assert unused == [], "every parameter must get a gradient (DDP without find_unused_parameters)"


def test_timm_models_it_cannot_serve_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="got the timm model ResNet: for a CNN use attach_isqrt_cov_head"):
        attach_so_vit_head(timm.create_model("resnet18", pretrained=False), 10)
    no_class_token = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=1, class_token=False, global_pool="avg"
    )
    with pytest.raises(ValueError, match="got VisionTransformer built without one"):
        attach_so_vit_head(no_class_token, 10)
    distilled = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=1)
    model = attach_so_vit_head(distilled, 10, reduced_dim=4)
    message = r"forward_head of VisionTransformerDistilled without pooling returned shape \(2, 192\)"
    with pytest.raises(ValueError, match=message):
        model(torch.randn(2, 3, 32, 32))
