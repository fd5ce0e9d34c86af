"""The ``LightningCLI`` entry point: ``python -m lit_models fit|validate|test|predict``."""

import csv
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Trainer
from pytorch_lightning.cli import ArgsType, LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities import rank_zero_only

from datamodules import ImageDataModule

from .classifier import ImageClassifier
from .training_curves import TrainingCurves

#: The main job's config, used when the command line names none.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"
_CONFIG_FLAGS = ("--config", "-c")
#: The logger's ``name`` when the config names none (Lightning's default).
_DEFAULT_LOG_NAME = "lightning_logs"
#: The file ``predict`` writes into the run's folder (with its tensors as ``.pt`` beside it).
PREDICTIONS_FILE = "predictions.csv"


def with_default_config(args: Sequence[str], subcommands: Sequence[str]) -> list[str]:
    """``args`` with ``--config`` :data:`DEFAULT_CONFIG` after the subcommand, if none is named.

    The packaged config goes first, so every option given still overrides it. Only
    a command line without any ``--config`` gets it: a config of one's own is not
    merged with the default job's (whose ``accelerator: cpu``, say, it may not set).

    Args:
        args (Sequence[str]): the command line after the program name.
        subcommands (Sequence[str]): the CLI's subcommands; without one first, ``args``
            is returned unchanged.

    Returns:
        list[str]: the arguments to parse.

    Example:
        >>> with_default_config(["fit", "--trainer.max_epochs=1"], ["fit", "test"])[:2]
        ['fit', '--config']
        >>> with_default_config(["test", "-c", "my.yaml"], ["fit", "test"])
        ['test', '-c', 'my.yaml']
    """
    args = list(args)
    if not args or args[0] not in subcommands:
        return args
    if any(arg in _CONFIG_FLAGS or arg.startswith("--config=") for arg in args[1:]):
        return args
    return [args[0], "--config", str(DEFAULT_CONFIG), *args[1:]]


def latest_checkpoint(log_root: str | Path) -> Path | None:
    """The checkpoint to resume from among the runs ``<log_root>/version_<N>``: the newest run
    (largest ``N``) that saved one, its ``last.ckpt`` if it has one, else its newest file.

    Args:
        log_root (str | Path): the logger's folder, ``<save_dir>/<name>``.

    Returns:
        Path | None: the checkpoint, or ``None`` when no run saved one.

    Example:
        >>> latest_checkpoint("runs/default/lightning_logs")  # doctest: +SKIP
        PosixPath('runs/default/lightning_logs/version_3/checkpoints/epoch=14-step=300.ckpt')
    """
    runs = []
    for folder in Path(log_root).glob("version_*"):
        number = re.fullmatch(r"version_(\d+)", folder.name)
        if number is not None:
            runs.append((int(number.group(1)), folder))
    for _, folder in sorted(runs, reverse=True):
        checkpoints = list((folder / "checkpoints").glob("*.ckpt"))
        if checkpoints:
            last = folder / "checkpoints" / "last.ckpt"
            return last if last in checkpoints else max(checkpoints, key=lambda path: path.stat().st_mtime)
    return None


def write_predictions(outputs: list[Any], folder: str | Path) -> Path:
    """Write :meth:`ImageClassifier.predict_step` outputs (one dict per batch, as
    ``Trainer.predict`` returns them; a list per dataloader with several) to
    ``<folder>/predictions.csv`` (``index``, ``prediction``, then the probability of each
    class, ``p_0`` ...) and the concatenated tensors to ``<folder>/predictions.pt``.

    Returns:
        Path: the CSV file.
    """
    batches = [item for group in outputs for item in (group if isinstance(group, list) else [group])]
    if not batches:
        raise ValueError("predict produced no batches: the predict dataloader is empty")
    merged = {key: torch.cat([batch[key].detach().cpu() for batch in batches]) for key in batches[0]}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(merged, folder / "predictions.pt")
    path = folder / PREDICTIONS_FILE
    probabilities = merged["probabilities"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "prediction", *(f"p_{k}" for k in range(probabilities.shape[1]))])
        for index, (label, row) in enumerate(zip(merged["prediction"].tolist(), probabilities.tolist())):
            writer.writerow([index, label, *(f"{p:.6g}" for p in row)])
    return path


class ClassifierCLI(LightningCLI):
    """``LightningCLI`` for :class:`ImageClassifier` on any :class:`~datamodules.ImageDataModule`.

    The network is given as ``model.model`` (a ``class_path``, e.g. one of
    :mod:`lit_models.models`) and the datamodule as ``data``. The datamodule's
    ``num_classes`` is linked to ``model.num_classes`` and to the network's
    ``num_classes``, and its ``num_channels`` and ``image_size`` to the network's
    ``in_channels`` and ``image_size`` where it takes them, so a config names neither.
    The optimizer and schedule are :class:`ImageClassifier` arguments, so the generic
    ``--optimizer``/``--lr_scheduler`` options are not added.

    Without ``--config`` the packaged main job, ``lit_models/configs/default.yaml``,
    is the config (see :func:`with_default_config`): ``python -m lit_models fit``
    trains it, ``fit --print_config`` shows it. One extra option,
    ``test_after_fit`` (default ``false``), makes ``fit`` go on to test the checkpoint
    it saved; every ``fit`` ends by printing where the metrics, the checkpoint and
    the training-curve plot went. Checkpoints hold the network's config, so
    ``test --ckpt_path PATH`` rebuilds the network they were trained with.

    Paths follow ``trainer.default_root_dir``: a config that names no logger gets a
    :class:`~pytorch_lightning.loggers.CSVLogger` saving there (metrics, checkpoints and
    curves in ``<default_root_dir>/lightning_logs/version_<N>``); a logger the config or
    command line gives keeps its own ``save_dir``. ``--ckpt_path last`` resumes the newest
    run of that folder (see :func:`latest_checkpoint`), and is an error naming the folder
    when it holds none. ``predict`` writes the predictions to ``predictions.csv`` in the
    run's folder (see :func:`write_predictions`) and prints where.

    Args:
        args (ArgsType): command-line style arguments, a dict, or ``None`` for
            ``sys.argv``. Default: ``None``.
        run (bool): run the subcommand (``args`` starts with it); ``False`` only parses
            and instantiates, without subcommands. Default: ``True``.
        **kwargs: further :class:`~pytorch_lightning.cli.LightningCLI` arguments.

    Example:
        >>> cli = ClassifierCLI(  # doctest: +SKIP
        ...     args=["--config", "lit_models/configs/default.yaml"], run=False)
        >>> type(cli.model.model).__name__  # doctest: +SKIP
        'SmallResNet'
    """

    def __init__(self, args: ArgsType = None, run: bool = True, **kwargs: Any) -> None:
        super().__init__(
            ImageClassifier,
            ImageDataModule,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            # The classifier saves its network's config itself (see ImageClassifier),
            # for CLI and Python-built models alike.
            load_from_checkpoint_support=False,
            args=args,
            run=run,
            **kwargs,
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        if args is None:
            # Parsed directly: handing sys.argv to LightningCLI as args would warn
            # that both were given.
            self.config = parser.parse_args(with_default_config(sys.argv[1:], self.subcommands()))
            return
        if isinstance(args, Sequence) and not isinstance(args, str):
            args = with_default_config(args, self.subcommands())
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        # Before LightningCLI reads the checkpoint: "last" becomes the newest run's file, since
        # Lightning would look only in this new run's (empty) folder and train from scratch.
        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("ckpt_path") == "last":
            log_root = self._log_root(self.config[subcommand].trainer)
            found = latest_checkpoint(log_root)
            if found is None:
                raise ValueError(
                    f"--ckpt_path last: no checkpoint in any run under {log_root} "
                    f"(version_<N>/checkpoints/*.ckpt), where this config's runs go; pass "
                    f"--ckpt_path PATH/TO/FILE.ckpt, or the trainer.default_root_dir (or logger "
                    f"save_dir) of the run to resume"
                )
            self.config[subcommand].ckpt_path = str(found)
        super()._parse_ckpt_path()

    @staticmethod
    def _log_root(trainer_config: Any) -> Path:
        """``<save_dir>/<name>`` of the logger the trainer config gives (or the CLI's default)."""
        root = Path(trainer_config.get("default_root_dir") or os.getcwd())
        logger = trainer_config.get("logger")
        init_args = logger.get("init_args") if hasattr(logger, "get") else None
        if init_args is not None and init_args.get("save_dir") is not None:
            name = init_args.get("name", _DEFAULT_LOG_NAME)
            return Path(init_args.save_dir) / (name or "")
        return root / _DEFAULT_LOG_NAME

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self._get(self.config_init, "trainer", default={})
        if "logger" not in kwargs and config.get("logger") in (None, True):
            # Lightning's own default is TensorBoard when installed; this keeps the CSV files
            # (and the curves drawn from them) whatever is installed, under default_root_dir.
            root = config.get("default_root_dir") or os.getcwd()
            kwargs["logger"] = CSVLogger(save_dir=root, name=_DEFAULT_LOG_NAME)
        return super().instantiate_trainer(**kwargs)

    def predict(self, **kwargs: Any) -> None:
        """``Trainer.predict``, then the predictions written to the run's folder."""
        kwargs["return_predictions"] = True
        outputs = self.trainer.predict(**kwargs)
        # Every rank asks for log_dir (it broadcasts under DDP); rank 0 writes.
        folder = self.trainer.log_dir or self.trainer.default_root_dir
        if self.trainer.is_global_zero and outputs:
            path = write_predictions(outputs, folder)
            print(f"\nPredictions: {path} (tensors: {path.with_suffix('.pt')})", flush=True)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Linked after the datamodule is built: ImageFolder counts its classes on disk.
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        for source, target in (
            ("data.num_classes", "num_classes"),
            ("data.num_channels", "in_channels"),
            ("data.image_size", "image_size"),
        ):
            # A network without the target argument (e.g. image_size of a ResNet) is skipped.
            parser.link_arguments(source, f"model.model.init_args.{target}", apply_on="instantiate")
        # Added to every subcommand, so that one config file serves fit, validate and test.
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After fit, test the saved checkpoint (or the final weights without one).",
        )

    def after_fit(self) -> None:
        trainer = self.trainer
        if self.config[self.subcommand].test_after_fit and not trainer.interrupted:
            checkpoint = trainer.checkpoint_callback
            has_checkpoint = checkpoint is not None and bool(checkpoint.best_model_path)
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best" if has_checkpoint else None)
        self._print_outputs()

    @rank_zero_only
    def _print_outputs(self) -> None:
        trainer = self.trainer
        lines = []
        for logger in trainer.loggers:
            if logger.log_dir is not None:
                lines.append(f"logs ({type(logger).__name__}): {logger.log_dir}")
        if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.best_model_path:
            lines.append(f"checkpoint: {trainer.checkpoint_callback.best_model_path}")
        for callback in trainer.callbacks:
            if isinstance(callback, TrainingCurves) and callback.path is not None:
                lines.append(f"training curves: {callback.path}")
        if lines:
            print("\n".join(["", "Outputs:", *(f"  {line}" for line in lines)]), flush=True)


def main(args: ArgsType = None) -> None:
    """Run the command line: ``main(["fit"])`` (the default job), ``main(["fit", "--config", PATH])``.

    Args:
        args (ArgsType): arguments as on the command line; ``None`` reads ``sys.argv``.
            Default: ``None``.

    Example:
        >>> main(["fit", "--config", "lit_models/configs/default.yaml",  # doctest: +SKIP
        ...       "--trainer.max_epochs", "1"])
    """
    ClassifierCLI(args=args)
