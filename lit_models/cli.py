"""The ``LightningCLI`` entry point: ``python -m lit_models fit|validate|test|predict``."""

from typing import Any

from pytorch_lightning.cli import ArgsType, LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities import rank_zero_only

from datamodules import ImageDataModule

from .classifier import ImageClassifier
from .training_curves import TrainingCurves


class ClassifierCLI(LightningCLI):
    """``LightningCLI`` for :class:`ImageClassifier` on any :class:`~datamodules.ImageDataModule`.

    The network is given as ``model.model`` (a ``class_path``, e.g. one of
    :mod:`lit_models.models`) and the datamodule as ``data``. The datamodule's
    ``num_classes`` is linked to ``model.num_classes`` and to the network's
    ``num_classes``, and its ``num_channels`` and ``image_size`` to the network's
    ``in_channels`` and ``image_size`` where it takes them, so a config names neither.
    The optimizer and schedule are :class:`ImageClassifier` arguments, so the generic
    ``--optimizer``/``--lr_scheduler`` options are not added.

    One extra option, ``test_after_fit`` (default ``false``), makes ``fit`` go on to
    test the checkpoint it saved; every ``fit`` ends by printing where the metrics,
    the checkpoint and the training-curve plot went.

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
            args=args,
            run=run,
            **kwargs,
        )

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
    """Run the command line, e.g. ``main(["fit", "--config", "lit_models/configs/default.yaml"])``.

    Args:
        args (ArgsType): arguments as on the command line; ``None`` reads ``sys.argv``.
            Default: ``None``.

    Example:
        >>> main(["fit", "--config", "lit_models/configs/default.yaml",  # doctest: +SKIP
        ...       "--trainer.max_epochs", "1"])
    """
    ClassifierCLI(args=args)
