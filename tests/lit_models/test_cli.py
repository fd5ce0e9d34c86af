"""The command line: bare runs the default job, every shipped config builds, checkpoints reload."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from torchvision.models import ResNet

import lit_models
from lit_models import (
    ClassifierCLI,
    ImageClassifier,
    ISqrtCovResNet,
    SmallResNet,
    SoViT,
    TimmISqrtCov,
    TimmSoViT,
    ZCAResNet,
    main,
)
from lit_models.cli import with_default_config
from sqrtlayers.layers import ISqrtCovHead, ZCABatchNorm

CONFIG_DIR = Path(lit_models.__file__).parent / "configs"

#: Each shipped config: its network class, backend, and (optimizer, lr) from the paper.
CONFIGS = {
    "default.yaml": (SmallResNet, "mpa-lya", ("sgd", 0.05)),
    "zca_resnet18_cifar10.yaml": (ZCAResNet, "mpa-lya", ("sgd", 0.1)),
    "zca_resnet18_cifar100.yaml": (ZCAResNet, "mpa-lya", ("sgd", 0.1)),
    "isqrt_cov_resnet50_imagenet.yaml": (ISqrtCovResNet, "ns", ("sgd", 0.1)),
    "so_vit7_imagenet.yaml": (SoViT, "mpa-lya", ("adamw", 1e-3)),
    # Need timm (the test extra); skipped without it.
    "isqrt_cov_timm_resnet50_imagenet.yaml": (TimmISqrtCov, "ns", ("sgd", 0.1)),
    "so_vit_timm_deit_tiny_imagenet.yaml": (TimmSoViT, "mpa-lya", ("adamw", 5e-4)),
}

#: The global batch of each ImageNet config: iSQRT-COV's 256 and So-ViT's 512, on either library.
IMAGENET_BATCH = {
    "isqrt_cov_resnet50_imagenet.yaml": 256,
    "isqrt_cov_timm_resnet50_imagenet.yaml": 256,
    "so_vit7_imagenet.yaml": 512,
    "so_vit_timm_deit_tiny_imagenet.yaml": 512,
}


def test_every_shipped_config_is_tested():
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == sorted(CONFIGS)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_config_comments_state_the_global_batch(config):
    # batch_size is the global batch (see datamodules.ImageDataModule), never a per-device one.
    text = (CONFIG_DIR / config).read_text().lower()
    for words in ("per device", "per-device", "per gpu", "per-gpu"):
        assert words not in text, config


def backends_of(network: torch.nn.Module) -> set[str]:
    return {m.backend.name for m in network.modules() if hasattr(m, "backend")}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_config_parses_and_builds(config, data_root, tmp_path, no_network):
    network_class, backend, (optimizer, lr) = CONFIGS[config]
    if "timm" in config:
        pytest.importorskip("timm")
    args = [
        "--config", str(CONFIG_DIR / config),
        "--trainer.default_root_dir", str(tmp_path),
    ]
    if "imagenet" in config:
        # Points the ImageNet configs at a 3-class folder, so their class count is known.
        args += ["--data.init_args.data_dir", str(data_root / "imagefolder")]
    cli = ClassifierCLI(args=args, run=False)

    network = cli.model.model
    assert type(network) is network_class
    assert cli.model.hparams.num_classes == cli.datamodule.num_classes
    assert (cli.model.hparams.optimizer, cli.model.hparams.lr) == (optimizer, lr)
    assert backends_of(network) == {backend}
    assert cli.config.test_after_fit is True
    if isinstance(network, ResNet):
        # The datamodule's channel count reached the stem.
        assert network.conv1.in_channels == cli.datamodule.num_channels
    if network_class is ZCAResNet:
        assert isinstance(network.bn1, ZCABatchNorm) and network.bn1.group_size == 64
        assert sum(isinstance(m, ZCABatchNorm) for m in network.modules()) == 1
        assert network.fc.out_features == cli.datamodule.num_classes
    if network_class is ISqrtCovResNet:
        assert isinstance(network.avgpool, ISqrtCovHead)
        assert network.avgpool.fc.in_features == 256 * 257 // 2
        assert network.avgpool.fc.out_features == 3
    if network_class is SoViT:
        assert (network.vit.image_size, network.vit.hidden_dim, len(network.vit.encoder.layers)) == (224, 256, 7)
    if network_class is SmallResNet:
        logits = network(torch.randn(2, cli.datamodule.num_channels, 32, 32))
        assert logits.shape == (2, 10)
    if "imagenet" in config:
        assert cli.datamodule.batch_size == IMAGENET_BATCH[config]
    if network_class in (TimmSoViT, TimmISqrtCov):
        # Built from scratch (pretrained false): nothing downloaded (no_network).
        assert cli.config.model.model.init_args.pretrained is False
    if network_class is TimmSoViT:
        vit = network.vit
        assert type(vit).__module__.startswith("timm.")
        assert type(vit).__name__ == "VisionTransformer"
        assert (vit.patch_embed.img_size, vit.embed_dim, len(vit.blocks)) == ((224, 224), 192, 12)
        assert vit.patch_embed.proj.in_channels == 3
        assert vit.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)
        assert network.head.covariance_classifier.in_features == 48 * 49 // 2
        assert network.head.token_classifier.out_features == 3
    if network_class is TimmISqrtCov:
        backbone = network.backbone
        assert type(backbone).__module__.startswith("timm.") and type(backbone).__name__ == "ResNet"
        assert [len(backbone.layer1), len(backbone.layer3)] == [3, 6]
        assert backbone.conv1.in_channels == 3
        # output_stride 16: the last stage keeps the resolution (no strided convolution).
        convolutions = [m for m in backbone.layer4.modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(m.stride == (1, 1) for m in convolutions)
        assert network.head.in_channels == 2048
        assert network.head.fc.in_features == 256 * 257 // 2 and network.head.fc.out_features == 3


def test_bare_fit_runs_the_default_job(tmp_path, monkeypatch, capsys):
    # No --config: the packaged default.yaml is the config.
    monkeypatch.chdir(tmp_path)
    cli = ClassifierCLI(
        args=["fit", "--trainer.fast_dev_run=true", "--trainer.enable_progress_bar=false"]
    )
    assert type(cli.model.model) is SmallResNet
    assert type(cli.datamodule).__name__ == "DigitsDataModule"
    assert cli.trainer.global_step == 1
    assert (cli.config.fit.model.lr, cli.config.fit.trainer.max_epochs) == (0.05, 15)


def test_print_config_shows_the_default_job(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--print_config"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["model"]["class_path"] == "lit_models.models.SmallResNet"
    assert printed["data"]["class_path"] == "datamodules.DigitsDataModule"
    assert printed["trainer"]["max_epochs"] == 15
    assert not any(tmp_path.iterdir())  # printing the config runs nothing


def test_own_config_is_not_merged_with_the_default(tmp_path):
    args = with_default_config(["fit", "--config", "mine.yaml", "--trainer.max_epochs=1"], ["fit"])
    assert args == ["fit", "--config", "mine.yaml", "--trainer.max_epochs=1"]
    assert with_default_config(["fit", "--config=x.yaml"], ["fit"]) == ["fit", "--config=x.yaml"]
    assert with_default_config(["--help"], ["fit"]) == ["--help"]


#: The console script next to this interpreter (where `pip install -e .` put it).
CONSOLE_SCRIPT = Path(sys.executable).parent / "sqrtlayers-train"


@pytest.mark.skipif(not CONSOLE_SCRIPT.is_file(), reason="package not installed")
def test_console_script_prints_the_default_job(tmp_path):
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "fit", "--print_config"], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, check=True,
    )
    network = yaml.safe_load(result.stdout)["model"]["model"]
    assert network["class_path"] == "lit_models.models.SmallResNet"


def test_default_job_end_to_end(tmp_path, capsys):
    # The bare command (no --config) with shorter epochs: the default job.
    common = [
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
        "--trainer.limit_test_batches", "2",
    ]
    cli = ClassifierCLI(args=[
        "fit", *common,
        "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1",
    ])
    printed = capsys.readouterr().out

    log_dir = tmp_path / "lightning_logs" / "version_0"
    checkpoints = list((log_dir / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 1
    for path in (log_dir, checkpoints[0], log_dir / "training_curves.png"):
        assert str(path) in printed
    assert (log_dir / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (log_dir / "config.yaml").is_file()
    with open(log_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # test_after_fit: the test ran on the checkpoint after the two epochs.
    assert [row["epoch"] for row in rows if row.get("val_acc")] == ["0", "1"]
    (test_row,) = [row for row in rows if row.get("test_acc")]

    # The checkpoint loads by its path alone: bitwise the weights fit ended with ...
    loaded = ImageClassifier.load_from_checkpoint(checkpoints[0])
    trained = cli.model.state_dict()
    assert loaded.state_dict().keys() == trained.keys()
    for name, value in trained.items():
        assert torch.equal(loaded.state_dict()[name], value), name
    # ... and the test metrics test_after_fit measured.
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         limit_test_batches=2)
    (metrics,) = trainer.test(loaded, datamodule=cli.datamodule, verbose=False)
    assert metrics["test_acc"] == pytest.approx(float(test_row["test_acc"]), abs=1e-6)
    assert metrics["test_loss"] == pytest.approx(float(test_row["test_loss"]), rel=1e-5)

    # The CLI's test, given only the checkpoint, rebuilds the same network.
    tested = ClassifierCLI(args=["test", *common, "--ckpt_path", str(checkpoints[0])])
    assert "test_acc" in capsys.readouterr().out
    assert type(tested.model.model) is SmallResNet
    cli_metrics = tested.trainer.callback_metrics
    assert float(cli_metrics["test_acc"]) == pytest.approx(metrics["test_acc"], abs=1e-6)
    assert float(cli_metrics["test_loss"]) == pytest.approx(metrics["test_loss"], rel=1e-5)
