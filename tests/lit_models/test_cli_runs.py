"""The CLI's run folders: ``default_root_dir`` places everything, ``--ckpt_path last`` resumes the
newest run, and ``predict`` writes the predictions there; ``predict_step`` on every batch form."""

import csv
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_models import ClassifierCLI, ImageClassifier, SmallResNet
from lit_models.cli import DEFAULT_CONFIG, latest_checkpoint

#: The default job made small: two 16-pixel batches of 8 per epoch, a narrow network, no test.
QUICK = [
    "--trainer.enable_progress_bar", "false",
    "--trainer.limit_train_batches", "2",
    "--trainer.limit_val_batches", "1",
    "--trainer.limit_predict_batches", "2",
    "--test_after_fit", "false",
    "--data.init_args.image_size", "16",
    "--data.init_args.batch_size", "8",
    "--model.model.init_args.widths", "[8, 16]",
    "--model.model.init_args.blocks", "[1, 1]",
    "--model.model.init_args.reduced_dim", "8",
]


def run(subcommand: str, root: Path, *args: str) -> ClassifierCLI:
    return ClassifierCLI(args=[subcommand, "--trainer.default_root_dir", str(root), *QUICK, *args])


def test_default_root_dir_holds_logs_checkpoints_curves_and_predictions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "elsewhere"
    cli = run("fit", root, "--trainer.max_epochs", "1")
    run_dir = root / "lightning_logs" / "version_0"
    assert Path(cli.trainer.log_dir) == run_dir
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "training_curves.png").is_file()
    assert [p.parent for p in root.rglob("*.ckpt")] == [run_dir / "checkpoints"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]  # nothing in runs/default
    assert str(run_dir) in capsys.readouterr().out

    # predict: the predictions of the trained checkpoint, in the predict run's folder.
    cli = run("predict", root, "--ckpt_path", "last")
    path = root / "lightning_logs" / "version_1" / "predictions.csv"
    assert Path(cli.trainer.log_dir) == path.parent
    assert str(path) in capsys.readouterr().out
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16  # two batches of 8
    probabilities = torch.tensor([[float(row[f"p_{k}"]) for k in range(10)] for row in rows])
    torch.testing.assert_close(probabilities.sum(1), torch.ones(16), atol=1e-4, rtol=0)
    assert [int(row["prediction"]) for row in rows] == probabilities.argmax(1).tolist()
    tensors = torch.load(path.with_suffix(".pt"))
    assert tensors["logits"].shape == (16, 10)
    assert torch.equal(tensors["prediction"], tensors["logits"].argmax(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]


def test_a_logger_of_ones_own_keeps_its_save_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = ClassifierCLI(args=[
        "--config", str(DEFAULT_CONFIG), "--trainer.default_root_dir", str(tmp_path / "root"), *QUICK,
        "--trainer.logger", "pytorch_lightning.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"),
        "--trainer.logger.init_args.name", "mine",
    ], run=False)
    assert Path(cli.trainer.log_dir) == tmp_path / "logs" / "mine" / "version_0"


def test_ckpt_path_last_resumes_the_newest_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run("fit", tmp_path, "--trainer.max_epochs", "1")
    (saved,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    assert first.trainer.global_step == 2
    resumed = run("fit", tmp_path, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert Path(resumed.trainer.ckpt_path) == saved
    # Two more steps on top of the first run's two: resumed, not started again.
    assert resumed.trainer.global_step == 4 and resumed.trainer.current_epoch == 2
    assert Path(resumed.trainer.log_dir).name == "version_1"
    assert latest_checkpoint(tmp_path / "lightning_logs").parent.parent.name == "version_1"


def test_ckpt_path_last_without_a_run_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"--ckpt_path last: no checkpoint .*lightning_logs.*--ckpt_path PATH"):
        run("fit", tmp_path / "empty", "--ckpt_path", "last")


def test_latest_checkpoint_prefers_the_newest_run_and_its_last_file(tmp_path):
    for version, names in ((2, ["epoch=0.ckpt", "last.ckpt"]), (10, ["epoch=3.ckpt"]), (11, [])):
        folder = tmp_path / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path) == tmp_path / "version_10" / "checkpoints" / "epoch=3.ckpt"
    (tmp_path / "version_10" / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "last.ckpt"
    assert latest_checkpoint(tmp_path / "nothing") is None


@pytest.mark.parametrize("form", ["images", "images_labels", "images_only_tuple"])
def test_predict_step_takes_bare_and_labelled_batches(form):
    torch.manual_seed(0)
    module = ImageClassifier(SmallResNet(4, 2, widths=(8, 16), blocks=(1, 1), reduced_dim=8), num_classes=4)
    images, labels = torch.randn(10, 2, 16, 16), torch.randint(0, 4, (10,))
    dataset = {
        "images": images,  # a tensor indexed by sample: batches are bare image tensors
        "images_labels": TensorDataset(images, labels),
        "images_only_tuple": TensorDataset(images),
    }[form]
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)
    outputs = trainer.predict(module, DataLoader(dataset, batch_size=4))
    logits = torch.cat([out["logits"] for out in outputs])
    with torch.no_grad():
        expected = module.eval()(images)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(torch.cat([out["probabilities"] for out in outputs]), expected.softmax(1))
    assert torch.equal(torch.cat([out["prediction"] for out in outputs]), expected.argmax(1))


def test_predict_step_refuses_a_batch_without_images():
    module = ImageClassifier(SmallResNet(4, 2, widths=(8, 16), blocks=(1, 1), reduced_dim=8), num_classes=4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) images or \(images, labels\), got \(2, 16, 16\)"):
        module.predict_step(torch.randn(2, 16, 16), 0)
