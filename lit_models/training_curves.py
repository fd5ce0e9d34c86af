"""A callback that records the epoch metrics of a fit and plots them to a PNG."""

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch import Tensor


def plot_training_curves(history: list[dict[str, float]], path: str | Path) -> Path:
    """Plot per-epoch metrics, losses and accuracies in two panels, to an image file.

    Keys containing ``"loss"`` go to the left panel, the others (accuracies) to the
    right one; ``"epoch"`` is the x axis. Uses matplotlib's object API, so it
    neither needs nor changes a pyplot backend.

    Args:
        history (list[dict[str, float]]): one dict per epoch, with an ``"epoch"`` key;
            a metric may be missing from some epochs.
        path (str or Path): output file; the format follows its suffix.

    Returns:
        Path: ``path``.

    Example:
        >>> history = [{"epoch": 0, "train_loss": 1.0, "val_acc": 0.5},
        ...            {"epoch": 1, "train_loss": 0.5, "val_acc": 0.8}]
        >>> plot_training_curves(history, "curves.png")  # doctest: +SKIP
        PosixPath('curves.png')
    """
    from matplotlib.figure import Figure

    names = sorted({key for row in history for key in row} - {"epoch"})
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, acc_axes = figure.subplots(1, 2)
    for name in names:
        rows = [row for row in history if name in row]
        axes = loss_axes if "loss" in name else acc_axes
        axes.plot([row["epoch"] for row in rows], [row[name] for row in rows], marker=".", label=name)
    for axes, title in ((loss_axes, "loss"), (acc_axes, "accuracy")):
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


class TrainingCurves(pl.Callback):
    """Record the epoch-level logged metrics of a fit and plot them when it ends.

    At the end of every training epoch (validation has run by then) the scalar
    entries of ``trainer.callback_metrics`` that are epoch values (not ``*_step``)
    are appended to :attr:`history`; on fit end the global-zero process writes
    :func:`plot_training_curves` to ``<trainer.log_dir>/<filename>`` (the logger's
    folder, beside ``metrics.csv`` and ``checkpoints/``). The history is saved in
    checkpoints, so a resumed fit plots the whole run.

    Args:
        filename (str): name of the image in the log folder. Default:
            ``"training_curves.png"``.

    Attributes:
        history (list[dict[str, float]]): one dict of metrics per epoch.
        path (Path or None): the image written by the last fit, if any.

    Example:
        >>> trainer = pl.Trainer(callbacks=[TrainingCurves()])  # doctest: +SKIP
        >>> trainer.fit(module, datamodule=dm)  # doctest: +SKIP
        >>> trainer.callbacks[0].path  # doctest: +SKIP
        PosixPath('lightning_logs/version_0/training_curves.png')
    """

    def __init__(self, filename: str = "training_curves.png") -> None:
        # Fail at construction, not after a whole fit, when the optional extra is missing.
        try:
            import matplotlib  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "TrainingCurves needs matplotlib: pip install 'sqrtlayers[plot]'"
            ) from error
        self.filename = filename
        self.history: list[dict[str, float]] = []
        self.path: Path | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": float(trainer.current_epoch)}
        for name, value in trainer.callback_metrics.items():
            if name.endswith("_step") or (isinstance(value, Tensor) and value.numel() != 1):
                continue
            # "train_loss_epoch" and "train_loss" name one curve.
            row[name.removesuffix("_epoch")] = float(value)
        self.history.append(row)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir broadcasts under DDP: every rank must ask for it, or the
        # ranks' next collectives pair up wrongly and the job hangs.
        folder = trainer.log_dir or trainer.default_root_dir
        if trainer.is_global_zero and self.history:
            self.path = plot_training_curves(self.history, Path(folder) / self.filename)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(row) for row in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(row) for row in state_dict["history"]]
