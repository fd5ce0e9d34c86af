"""The command line: every shipped config parses and builds, and the default job runs."""

import csv
from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet

import lit_models
from lit_models import ClassifierCLI, ISqrtCovResNet, SmallResNet, SoViT, ZCAResNet, main
from sqrtlayers.layers import ISqrtCovHead, ZCABatchNorm

CONFIG_DIR = Path(lit_models.__file__).parent / "configs"

#: Each shipped config: its network class, backend, and (optimizer, lr) from the paper.
CONFIGS = {
    "default.yaml": (SmallResNet, "mpa-lya", ("sgd", 0.05)),
    "zca_resnet18_cifar10.yaml": (ZCAResNet, "mpa-lya", ("sgd", 0.1)),
    "zca_resnet18_cifar100.yaml": (ZCAResNet, "mpa-lya", ("sgd", 0.1)),
    "isqrt_cov_resnet50_imagenet.yaml": (ISqrtCovResNet, "ns", ("sgd", 0.1)),
    "so_vit7_imagenet.yaml": (SoViT, "mpa-lya", ("adamw", 1e-3)),
}


def test_every_shipped_config_is_tested():
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == sorted(CONFIGS)


def backends_of(network: torch.nn.Module) -> set[str]:
    return {m.backend.name for m in network.modules() if hasattr(m, "backend")}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_config_parses_and_builds(config, data_root, tmp_path, no_network):
    network_class, backend, (optimizer, lr) = CONFIGS[config]
    args = [
        "--config", str(CONFIG_DIR / config),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger.init_args.save_dir", str(tmp_path),
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


def test_default_job_end_to_end(tmp_path, capsys):
    common = [
        "--config", str(CONFIG_DIR / "default.yaml"),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
        "--trainer.limit_test_batches", "2",
    ]
    main([
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
    assert sum(bool(row.get("test_acc")) for row in rows) == 1

    # The same config tests the saved checkpoint.
    main(["test", *common, "--ckpt_path", str(checkpoints[0])])
    assert "test_acc" in capsys.readouterr().out
