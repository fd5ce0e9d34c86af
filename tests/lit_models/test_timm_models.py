"""The timm-backbone networks: their configs train at small sizes with every parameter in use,
``pretrained`` reaches ``timm.create_model``, and a checkpoint rebuilds without a download.

Nothing is downloaded: every test runs under ``no_network``, and ``pretrained=True`` is only
ever seen by a stand-in for ``timm.create_model``. The configs' parsing and full-size
networks are checked with the other configs in test_cli.py; the tiny networks of
conftest.NETWORKS go through the export and fast_dev_run tests.
"""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import lit_models
from datamodules import SyntheticDataModule
from lit_models import ClassifierCLI, ImageClassifier, TimmISqrtCov, TimmSoViT
from lit_models.models.timm_models import create_timm_backbone
from lit_models.network_config import build_network, network_config

timm = pytest.importorskip("timm")

CONFIG_DIR = Path(lit_models.__file__).parent / "configs"
TIMM_CONFIGS = sorted(p.name for p in CONFIG_DIR.glob("*timm*.yaml"))


@pytest.fixture(autouse=True)
def _offline(no_network):
    """No network is built from downloaded weights."""


@pytest.fixture
def create_model_calls(monkeypatch) -> list[tuple[str, dict]]:
    """``timm.create_model`` records its arguments and builds without weights, whatever
    ``pretrained`` says: the (name, arguments) of each call, in order."""
    calls = []
    create_model = timm.create_model

    def record(name, **kwargs):
        calls.append((name, dict(kwargs)))
        return create_model(name, **{**kwargs, "pretrained": False})

    monkeypatch.setattr(timm, "create_model", record)
    return calls


def train_step(network: nn.Module, num_classes: int, images: torch.Tensor) -> float:
    """Forward and backward on a tiny batch; returns the loss, after checking that every
    parameter got a finite gradient (DDP without find_unused_parameters)."""
    loss = nn.functional.cross_entropy(network(images), torch.arange(images.shape[0]) % num_classes)
    loss.backward()
    unused = [key for key, p in network.named_parameters() if p.grad is None]
    assert unused == [], "every parameter must get a gradient"
    assert all(torch.isfinite(p.grad).all() for p in network.parameters())
    return loss.item()


def test_there_are_timm_configs():
    assert TIMM_CONFIGS == [
        "isqrt_cov_timm_resnet50_imagenet.yaml", "so_vit_timm_deit_tiny_imagenet.yaml"
    ]


@pytest.mark.parametrize("config", TIMM_CONFIGS)
def test_timm_config_trains_a_step_at_32_pixels(config, data_root, tmp_path):
    args = [
        "--config", str(CONFIG_DIR / config),
        "--trainer.default_root_dir", str(tmp_path),
        # The 3-class test folder at 32 pixels: the ViT is built for that size.
        "--data.init_args.data_dir", str(data_root / "imagefolder"),
        "--data.init_args.image_size", "32",
        "--data.init_args.batch_size", "2",
        "--data.init_args.num_workers", "0",
    ]
    if "so_vit" in config:
        args += ["--model.model.init_args.patch_size", "8"]
    cli = ClassifierCLI(args=args, run=False)
    network = cli.model.model
    assert isinstance(network, (TimmSoViT, TimmISqrtCov))
    if isinstance(network, TimmSoViT):
        assert network.vit.patch_embed.img_size == (32, 32)
    cli.datamodule.setup("fit")
    images, _ = next(iter(cli.datamodule.train_dataloader()))
    assert images.shape == (2, 3, 32, 32)
    assert train_step(network.train(), cli.datamodule.num_classes, images) > 0


def test_pretrained_and_the_options_reach_timm(create_model_calls):
    TimmSoViT(3, "vit_tiny_patch16_224", pretrained=True, image_size=32, patch_size=8,
              in_channels=1, drop_path_rate=0.1, timm_kwargs={"depth": 1})
    TimmISqrtCov(3, "convnext_atto", pretrained=True, reduced_dim=8, output_stride=16)
    TimmISqrtCov(3, "resnet18", reduced_dim=8, timm_kwargs={"layers": [1, 1, 1, 1]})
    common = {"num_classes": 0}  # no classifier is built or loaded: the heads replace it
    assert create_model_calls == [
        ("vit_tiny_patch16_224", {"pretrained": True, **common, "in_chans": 1, "img_size": 32,
                                  "patch_size": 8, "drop_path_rate": 0.1, "depth": 1}),
        # drop_path_rate 0 is not passed: not every timm CNN takes it.
        ("convnext_atto", {"pretrained": True, **common, "in_chans": 3, "output_stride": 16}),
        ("resnet18", {"pretrained": False, **common, "in_chans": 3, "layers": [1, 1, 1, 1]}),
    ]


def test_a_pretrained_network_checkpoint_rebuilds_without_download(create_model_calls, tmp_path):
    network = TimmSoViT(4, "vit_tiny_patch16_224", pretrained=True, image_size=16, in_channels=2,
                        patch_size=4, reduced_dim=4,
                        timm_kwargs={"depth": 1, "embed_dim": 16, "num_heads": 2})
    # The checkpoint's weights replace timm's: the recorded config asks for none.
    assert network_config(network)["init_args"]["pretrained"] is False
    module = ImageClassifier(network, num_classes=4, lr=0.01)
    trainer = pl.Trainer(accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    datamodule = SyntheticDataModule(num_samples=8, num_classes=4, image_size=16, num_channels=2,
                                     batch_size=4)
    trainer.fit(module, datamodule=datamodule)
    trainer.save_checkpoint(tmp_path / "last.ckpt")

    loaded = ImageClassifier.load_from_checkpoint(tmp_path / "last.ckpt")
    assert [kwargs["pretrained"] for _, kwargs in create_model_calls] == [True, False]
    assert type(loaded.model) is TimmSoViT
    for name, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


@pytest.mark.parametrize(
    "build",
    [
        lambda: TimmSoViT(4, "vit_tiny_patch16_224", image_size=16, in_channels=2, patch_size=4,
                          reduced_dim=4, timm_kwargs={"depth": 1, "reg_tokens": 2}),
        lambda: TimmISqrtCov(4, "resnet18", in_channels=2, output_stride=16, reduced_dim=8,
                             timm_kwargs={"layers": [1, 1, 1, 1]}),
    ],
    ids=["so_vit_register_tokens", "isqrt_cov_resnet"],
)
def test_other_channel_counts_and_backbones(build):
    network = build()
    if isinstance(network, TimmSoViT):
        assert network.head.num_prefix_tokens == 3  # the class token and 2 register tokens
    size = 16 if isinstance(network, TimmSoViT) else 32
    images = torch.randn(3, 2, size, size)
    assert network(images).shape == (3, 4)
    assert train_step(network, 4, images) > 0
    # The config rebuilds the same architecture.
    rebuilt = build_network(network_config(network))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in network.state_dict().items()
    }


def test_timm_kwargs_may_not_repeat_the_builders_options():
    with pytest.raises(ValueError, match=r"timm_kwargs may not set \['img_size'\]"):
        TimmSoViT(3, image_size=32, timm_kwargs={"img_size": 64})
    with pytest.raises(ValueError, match=r"\['pretrained'\]"):
        create_timm_backbone("resnet18", timm_kwargs={"pretrained": True})


def test_drop_path_rate_is_checked():
    with pytest.raises(ValueError, match=r"drop_path_rate must be in \[0, 1\), got 1.5"):
        TimmISqrtCov(3, "resnet18", drop_path_rate=1.5)


def test_without_timm_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "timm", None)
    with pytest.raises(ImportError, match=r"pip install 'sqrtlayers\[timm\]'"):
        TimmISqrtCov(3)
