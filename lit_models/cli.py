"""The ``LightningCLI`` entry point: ``python -m lit_models fit|validate|test|predict``."""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.cli import ArgsType, LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities import rank_zero_only

from datamodules import ImageDataModule

from .classifier import ImageClassifier
from .training_curves import TrainingCurves

#: The main job's config, used when the command line names none.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"
_CONFIG_FLAGS = ("--config", "-c")


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
