"""Multi-process fit through the real DDP launcher trains the model one process trains.

The CLI runs as 2 CPU processes with ``strategy=ddp`` (Lightning relaunches the
script for rank 1). The global batch is split across the processes (see
``datamodules.ImageDataModule``) and the ZCA statistics are synchronised by default,
so every step sees the same global batch, gradient and whitening statistics as one
process does: both ranks end with identical weights, equal to a one-process fit.
"""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import pytorch_lightning as pl
import torch
import yaml

from torch.utils.data import DataLoader, DistributedSampler

from datamodules import SyntheticDataModule
from lit_models import ClassifierCLI, ImageClassifier, SmallResNet
from sqrtlayers.layers import ZCABatchNorm

REPO_ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 2
STEPS_PER_EPOCH = 2


class SameOrderDataModule(SyntheticDataModule):
    """Draws the training samples in one seeded order whatever the number of processes.

    Rank ``r`` of ``k`` takes every ``k``-th sample of one permutation, so the ``k``
    per-process batches of a step together are the one-process batch of that step.
    The per-process batch size is the datamodule's own choice, left as it is.
    """

    def train_dataloader(self) -> DataLoader:
        loader = super().train_dataloader()
        sampler = DistributedSampler(
            loader.dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank,
            shuffle=True, seed=0,
        )
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler)


class SaveRankState(pl.Callback):
    """Save each rank's state_dict and ZCA sync flags to ``folder/rank{k}.pt`` at fit end."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sync_flags = [m.sync_stats for m in pl_module.modules() if isinstance(m, ZCABatchNorm)]
        state = {"state_dict": pl_module.state_dict(), "sync_flags": sync_flags,
                 "world_size": trainer.world_size, "global_step": trainer.global_step}
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")


def write_config(folder: Path) -> Path:
    """A tiny job: 64 training images in global batches of 32, EPOCHS epochs.

    Every norm is a ZCA layer (plain BatchNorm statistics stay per-rank by design, as
    in torch).
    """
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_epochs": EPOCHS, "limit_val_batches": 0,
            "use_distributed_sampler": False,
            "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "default_root_dir": str(folder),
            "callbacks": [{"class_path": f"{__name__}.SaveRankState",
                           "init_args": {"folder": str(folder)}}],
        },
        "model": {
            "model": {"class_path": "lit_models.models.SmallResNet",
                      "init_args": {"widths": [8, 8], "blocks": [1, 1], "zca_layers": "all",
                                    "reduced_dim": 4, "backend": "eigh"}},
            "lr": 0.05,
        },
        "data": {"class_path": f"{__name__}.SameOrderDataModule",
                 "init_args": {"num_samples": 80, "num_classes": 4, "image_size": 8,
                               "batch_size": 32}},
    }
    path = folder / "job.yaml"  # not config.yaml: the CLI saves its own there
    path.write_text(yaml.safe_dump(config))
    return path


def load_ranks(folder: Path, count: int) -> list[dict]:
    return [torch.load(folder / f"rank{k}.pt", weights_only=True) for k in range(count)]


@pytest.mark.slow
def test_ddp_launcher_matches_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PL_", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_"))}
    env.update(PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "lit_models", "fit", "--config", str(write_config(two)),
        "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu",
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    ClassifierCLI(args=["fit", "--config", str(write_config(one))])

    (reference,) = load_ranks(one, 1)
    rank0, rank1 = load_ranks(two, 2)
    assert (reference["world_size"], rank0["world_size"]) == (1, 2)
    # The global batch is split across the processes: as many optimizer steps as one process.
    assert reference["global_step"] == rank0["global_step"] == EPOCHS * STEPS_PER_EPOCH
    # ZCA sync is on by default under DDP, and only there.
    assert len(rank0["sync_flags"]) == len(reference["sync_flags"]) == 7
    assert all(rank0["sync_flags"] + rank1["sync_flags"])
    assert not any(reference["sync_flags"])

    # Both ranks end with bitwise the same weights and whitening statistics ...
    assert rank0["state_dict"].keys() == rank1["state_dict"].keys() == reference["state_dict"].keys()
    for name, value in rank0["state_dict"].items():
        assert torch.equal(rank1["state_dict"][name], value), name
    whitening = rank0["state_dict"]["model.stem.1.running_whitening"]
    assert int(rank0["state_dict"]["model.stem.1.num_batches_tracked"]) == EPOCHS * STEPS_PER_EPOCH
    assert not torch.allclose(whitening, torch.eye(whitening.shape[-1]).expand_as(whitening))
    # ... and they are the one-process model: global statistics, global gradients (up
    # to the order of float sums; per-rank statistics would differ by far more).
    for name, value in reference["state_dict"].items():
        torch.testing.assert_close(rank0["state_dict"][name], value, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.parametrize(("world_size", "sync_zca_stats", "expected"),
                         [(2, True, True), (2, False, False), (1, True, False)])
def test_zca_sync_follows_the_switch_under_ddp(world_size, sync_zca_stats, expected):
    network = SmallResNet(4, widths=(8,), blocks=(1,), zca_layers="all", reduced_dim=4)
    module = ImageClassifier(network, num_classes=4, sync_zca_stats=sync_zca_stats)
    fake_trainer = SimpleNamespace(world_size=world_size)
    with mock.patch.object(ImageClassifier, "trainer", new=fake_trainer):
        module.setup("fit")
    flags = {m.sync_stats for m in network.modules() if isinstance(m, ZCABatchNorm)}
    assert flags == {expected}
