"""The command line of the style-transfer decoders: ``python -m lit_models.style_cli fit|validate|test``.

A ``LightningCLI`` for :class:`~lit_models.style_decoder.StyleDecoderTraining` on any
:class:`~datamodules.ImageDataModule`; the job is its config,
``lit_models/configs/style_transfer/wct_decoder_vgg19.yaml``::

    python -m lit_models.style_cli fit --config lit_models/configs/style_transfer/wct_decoder_vgg19.yaml \\
        --model.encoder_weights vgg19-dcbb9e9d.pth --data.init_args.data_dir /path/to/photographs
"""

from pathlib import Path

from pytorch_lightning.cli import ArgsType, LightningCLI

from datamodules import ImageDataModule

from .style_decoder import StyleDecoderTraining

#: The packaged config: the decoder of VGG-19's relu3_1 on an image folder.
STYLE_CONFIG = Path(__file__).parent / "configs" / "style_transfer" / "wct_decoder_vgg19.yaml"


class StyleDecoderCLI(LightningCLI):
    """``LightningCLI`` for :class:`StyleDecoderTraining`; the datamodule is given as ``data``
    (a ``class_path``), the optimizer by the module (``--model.lr``).

    Args:
        args (ArgsType): command-line style arguments, or ``None`` for ``sys.argv``.
            Default: ``None``.
        run (bool): run the subcommand. Default: ``True``.
    """

    def __init__(self, args: ArgsType = None, run: bool = True) -> None:
        super().__init__(
            StyleDecoderTraining,
            ImageDataModule,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
        )


def main(args: ArgsType = None) -> None:
    """Run the command line (see the module docstring)."""
    StyleDecoderCLI(args=args)


if __name__ == "__main__":
    main()
