"""The training-curve callback records epoch metrics and writes a PNG beside the logs."""

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

from datamodules import SyntheticDataModule
from lit_models import ImageClassifier, SmallResNet, TrainingCurves, plot_training_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_training_curves_writes_png_with_gaps(tmp_path):
    history = [{"epoch": 0.0, "train_loss": 2.0}, {"epoch": 1.0, "train_loss": 1.0, "val_acc": 0.5}]
    path = plot_training_curves(history, tmp_path / "sub" / "curves.png")
    assert path == tmp_path / "sub" / "curves.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_callback_records_each_epoch_and_plots_in_the_log_dir(tmp_path):
    curves = TrainingCurves()
    module = ImageClassifier(SmallResNet(4, 3, widths=(4,), blocks=(1,), reduced_dim=4), 4)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=3, limit_train_batches=2, limit_val_batches=1,
        logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[curves],
    )
    trainer.fit(module, datamodule=SyntheticDataModule(num_samples=40, num_classes=4, image_size=8, batch_size=8))

    assert [row["epoch"] for row in curves.history] == [0.0, 1.0, 2.0]
    assert {"train_loss", "val_loss", "val_acc"} <= set(curves.history[-1])
    assert not any(name.endswith(("_step", "_epoch")) for row in curves.history for name in row)
    assert curves.path == tmp_path / "lightning_logs" / "version_0" / "training_curves.png"
    assert curves.path.read_bytes()[:8] == PNG_SIGNATURE

    restored = TrainingCurves()
    restored.load_state_dict(curves.state_dict())
    assert restored.history == curves.history
