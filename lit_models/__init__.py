"""PyTorch Lightning models that use the square-root layers, and their command line.

=================================  ===============================================
:class:`ImageClassifier`           LightningModule around an injected network
:mod:`lit_models.models`           ready networks: SmallResNet (default), ZCAResNet,
                                   ISqrtCovResNet, SoViT; on timm backbones
                                   TimmSoViT, TimmISqrtCov (``pretrained=``)
:class:`TrainingCurves`            callback that plots the epoch metrics to a PNG
:class:`StyleDecoderTraining`      trains a style-transfer decoder (``python -m lit_models.style_cli``)
:class:`RecomputeRunningStats`     callback: running statistics recomputed before validation
:func:`lr_multiplier`              warm-up + cosine/step learning-rate schedule
:func:`main`                       ``python -m lit_models`` / ``sqrtlayers-train``
=================================  ===============================================

Example (the default job, the small ResNet on the embedded digits: the bare command runs
it, no ``--config`` needed; another job names its config)::

    python -m lit_models fit
    python -m lit_models fit --config lit_models/configs/so_vit_timm_deit_tiny_imagenet.yaml \
        --data.init_args.data_dir /path/to/imagenet
"""

from .classifier import ImageClassifier
from .cli import ClassifierCLI, main
from .models import ISqrtCovResNet, SmallResNet, SoViT, TimmISqrtCov, TimmSoViT, ZCAResNet
from .precise_statistics import RecomputeRunningStats
from .schedules import lr_multiplier
from .style_decoder import StyleDecoderTraining
from .training_curves import TrainingCurves, plot_training_curves

__all__ = [
    "ClassifierCLI",
    "ISqrtCovResNet",
    "ImageClassifier",
    "SmallResNet",
    "SoViT",
    "StyleDecoderTraining",
    "TimmISqrtCov",
    "TimmSoViT",
    "TrainingCurves",
    "ZCAResNet",
    "RecomputeRunningStats",
    "lr_multiplier",
    "main",
    "plot_training_curves",
]
