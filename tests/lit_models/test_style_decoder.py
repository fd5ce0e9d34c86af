"""StyleDecoderTraining and its command line: the decoder learns to invert the encoder, only the
decoder trains, the shipped config builds and fits on a tiny image folder, checkpoints reload,
the user's VGG-19 weights file is read (random weights, nothing downloaded)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch import nn

from datamodules import ImageFolderDataModule
from lit_models import StyleDecoderTraining
from lit_models.style_cli import STYLE_CONFIG, StyleDecoderCLI
from sqrtlayers.layers import StyleTransfer


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny convolutions: a second thread only adds scheduling overhead on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_decoder_learns_to_invert_the_encoder_and_only_it_trains() -> None:
    module = StyleDecoderTraining(level=1, lr=1e-2)
    optimizer = module.configure_optimizers()
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == {id(p) for p in module.decoder.parameters()}
    assert all(not p.requires_grad for p in module.encoder.parameters())
    encoder_before = [p.clone() for p in module.encoder.parameters()]
    images = torch.randn(4, 3, 8, 8)
    first = None
    for _ in range(20):
        losses = module.training_losses(images)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in losses.items()}
    last = module.training_losses(images)
    # Measured: 1.05 -> 0.08 in 20 steps.
    assert float(last["loss"]) < 0.25 * first["loss"]
    assert float(last["pixel_loss"]) < first["pixel_loss"] and float(last["feature_loss"]) < first["feature_loss"]
    torch.testing.assert_close(float(last["loss"]), float(last["pixel_loss"] + last["feature_loss"]))
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, module.encoder.parameters()))
    module.train()
    assert not module.encoder.training and module.decoder.training


def test_loss_weights_and_a_users_encoder_and_decoder() -> None:
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    decoder = nn.Conv2d(8, 3, 1)
    module = StyleDecoderTraining(level=1, encoder=encoder, decoder=decoder, pixel_weight=0.0, feature_weight=2.0)
    assert module.decoder is decoder and module.encoder is encoder
    losses = module.training_losses(torch.randn(2, 3, 6, 6))
    torch.testing.assert_close(losses["loss"], 2 * losses["feature_loss"])
    # The trained decoder goes into the pipeline at its level.
    net = StyleTransfer([encoder], [module.decoder], backend="eigh")
    assert net(torch.randn(2, 3, 6, 6), torch.randn(1, 3, 6, 6)).shape == (2, 3, 6, 6)


def test_the_users_vgg19_weights_file_is_read(tmp_path: Path) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"])[:7]
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    module = StyleDecoderTraining(level=2, encoder_weights=str(path))
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module.encoder(x), features.eval()(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(level=6), r"level must be in 1..5 for the VGG-19 encoder, got 6"),
        (dict(level=0), r"level must be an int >= 1, got 0"),
        (dict(lr=-1.0), r"lr must be >= 0, got -1.0"),
        (dict(encoder=nn.Identity(), encoder_weights="w.pth"), "encoder_weights are for the default VGG-19 encoder"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StyleDecoderTraining(**kwargs)


def cli_args(data_root: Path, tmp_path: Path) -> list[str]:
    return [
        "--config", str(STYLE_CONFIG),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--data.init_args.data_dir", str(data_root / "imagefolder"),
    ]  # fmt: skip


def test_shipped_config_parses_and_builds(data_root: Path, tmp_path: Path, no_network: None) -> None:
    cli = StyleDecoderCLI(args=cli_args(data_root, tmp_path), run=False)
    assert isinstance(cli.model, StyleDecoderTraining) and isinstance(cli.datamodule, ImageFolderDataModule)
    assert (cli.model.hparams.level, cli.model.hparams.lr, cli.model.hparams.encoder_weights) == (3, 1e-4, None)
    assert cli.datamodule.image_size == 256 and cli.datamodule.batch_size == 8
    # relu3_1: VGG-19's first three stages, 256 channels.
    assert cli.model.encoder[-1][-2].out_channels == 256
    text = STYLE_CONFIG.read_text().lower()
    assert "global batch" in text and "per device" not in text
    assert yaml.safe_load(STYLE_CONFIG.read_text())["model"]["level"] == 3


def test_fit_on_a_tiny_image_folder_and_reload_the_checkpoint(data_root: Path, tmp_path: Path, no_network: None) -> None:
    args = ["fit", *cli_args(data_root, tmp_path), "--model.level", "2", "--data.init_args.image_size", "16",
            "--data.init_args.num_workers", "0", "--data.init_args.holdout_fraction", "0.2",
            "--data.init_args.batch_size", "4", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
            "--trainer.enable_progress_bar", "false"]  # fmt: skip
    cli = StyleDecoderCLI(args=args)
    assert cli.trainer.global_step == 2
    metrics = cli.trainer.callback_metrics
    assert {"train_loss", "val_loss", "val_pixel_loss", "val_feature_loss"} <= set(metrics)
    assert torch.isfinite(metrics["val_loss"])
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    restored = StyleDecoderTraining.load_from_checkpoint(checkpoint)
    for a, b in zip(restored.state_dict().values(), cli.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False).test(
        restored, datamodule=cli.datamodule, verbose=False)[0]["test_loss"] > 0  # fmt: skip
