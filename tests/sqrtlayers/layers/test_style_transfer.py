"""The style transfer pipeline: the VGG-19 encoder in torchvision's layout (random weights, no
download), mirrored decoders, and StyleTransfer with the default and a user's encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sqrtlayers.layers import StyleTransfer, mirror_decoder, vgg19_encoder, whitening_coloring

from .gaussians import covariance


def torchvision_vgg19_state(tmp_path: Path) -> tuple[nn.Module, Path]:
    """torchvision's own VGG-19 features at random weights, saved as a whole model's state dict
    (``features.N.*`` and a classifier entry the encoder must skip)."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"])
    state = {f"features.{key}": value for key, value in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    return features.eval(), path


def test_vgg19_encoder_loads_torchvision_weights_and_cuts_at_relu_k_1(tmp_path: Path) -> None:
    features, path = torchvision_vgg19_state(tmp_path)
    encoder = vgg19_encoder(weights=path).eval()
    # The same from the features' own state dict (keys "N.*").
    again = vgg19_encoder(weights=features.state_dict(), levels=2).eval()
    x = torch.randn(1, 3, 16, 16)
    ends = {1: 2, 2: 7, 3: 12, 4: 21, 5: 30}  # relu{k}_1 in torchvision's features
    with torch.no_grad():
        out = x
        for level, stage in enumerate(encoder, start=1):
            out = stage(out)
            torch.testing.assert_close(out, features[: ends[level]](x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(again(x), features[:7](x), rtol=1e-5, atol=1e-5)
    assert [stage[-1].__class__ for stage in encoder] == [nn.ReLU] * 5
    assert [stage[-2].out_channels for stage in encoder] == [64, 128, 256, 512, 512]


def test_vgg19_encoder_refuses_incomplete_weights_and_bad_levels() -> None:
    with pytest.raises(ValueError, match=r"the VGG-19 weights lack \['5.bias', '5.weight'\]"):
        first_stage = {"0.weight": torch.zeros(64, 3, 3, 3), "0.bias": torch.zeros(64),
                       "2.weight": torch.zeros(64, 64, 3, 3), "2.bias": torch.zeros(64)}  # fmt: skip
        vgg19_encoder(weights=first_stage, levels=2)
    with pytest.raises(ValueError, match=r"levels must be in 1..5, got 6"):
        vgg19_encoder(levels=6)
    with pytest.raises(ValueError, match=r"levels must be an int >= 1, got 0"):
        vgg19_encoder(levels=0)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_mirror_decoder_inverts_the_shapes(levels: int) -> None:
    encoder = vgg19_encoder(levels=levels)
    decoder = mirror_decoder(encoder)
    x = torch.randn(2, 3, 16, 12)
    assert decoder(encoder(x)).shape == x.shape
    convolutions = [m for m in decoder if isinstance(m, nn.Conv2d)]
    assert convolutions[-1].out_channels == 3 and not isinstance(decoder[-1], nn.ReLU)
    assert sum(isinstance(m, nn.Upsample) for m in decoder) == levels - 1


def test_mirror_decoder_refuses_layers_it_cannot_mirror() -> None:
    with pytest.raises(TypeError, match="mirror_decoder mirrors Conv2d, ReLU and MaxPool2d layers, got BatchNorm2d: pass a decoder"):
        mirror_decoder([nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))])
    with pytest.raises(TypeError, match="mirror_decoder needs stride-1 convolutions with odd square kernels"):
        mirror_decoder([nn.Conv2d(3, 4, 2)])


def test_a_users_identity_encoder_makes_it_whitening_coloring_in_pixel_space() -> None:
    net = StyleTransfer([nn.Identity()], [nn.Identity()], backend="eigh", eps=0.0)
    content, style = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randn(1, 3, 5, 5, dtype=torch.float64) * 2 + 1
    out = net(content, style)
    torch.testing.assert_close(out, whitening_coloring(content, style, eps=0.0, backend="eigh"))
    torch.testing.assert_close(covariance(out.flatten(2)), covariance(style.flatten(2)).expand(2, 3, 3))
    blended = StyleTransfer([nn.Identity()], [nn.Identity()], alpha=0.0, backend="eigh")(content, style)
    torch.testing.assert_close(blended, content, rtol=0, atol=0)
    with pytest.raises(TypeError, match="got Identity: pass a decoder"):
        StyleTransfer([nn.Identity()])


def test_default_pipeline_runs_every_level_and_only_the_decoders_and_alpha_learn() -> None:
    encoder = vgg19_encoder(levels=3)
    net = StyleTransfer(encoder, learnable_alpha=True, alpha=0.8, eps=1e-3, group_size=64, backend="eigh").train()
    assert net.levels == (3, 2, 1) and not net.encoder.training and net.decoders[0].training
    assert all(not p.requires_grad for p in net.encoder.parameters())
    calls: list[int] = []
    for level, decoder in enumerate(net.decoders, start=1):
        decoder.register_forward_hook(lambda module, args, out, level=level: calls.append(level))
    out = net(torch.randn(2, 3, 8, 8), torch.randn(1, 3, 12, 12))
    assert out.shape == (2, 3, 8, 8) and calls == [3, 2, 1]
    out.square().mean().backward()
    assert net.transform.alpha.grad is not None
    assert all(p.grad is not None for p in net.decoders.parameters())
    assert StyleTransfer(encoder, levels=[2], backend="eigh")(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_bad_pipelines_are_refused() -> None:
    encoder = vgg19_encoder(levels=2)
    with pytest.raises(ValueError, match=r"levels must be ints in 1..2 \(the encoder's stages\), got \[3\]"):
        StyleTransfer(encoder, levels=[3])
    with pytest.raises(ValueError, match=r"decoders must hold one decoder \(or None\) per encoder stage \(2\), got 1"):
        StyleTransfer(encoder, [None])
    with pytest.raises(ValueError, match="encoder must have at least one stage"):
        StyleTransfer([])
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\), got shape \(3, 8, 8\)"):
        StyleTransfer(encoder)(torch.randn(3, 8, 8), torch.randn(1, 3, 8, 8))
