"""PyTorch Lightning models that use the square-root layers, and their command line.

=================================  ===============================================
:class:`ImageClassifier`           LightningModule around an injected network
:mod:`lit_models.models`           ready networks: SmallResNet (default), ZCAResNet,
                                   ISqrtCovResNet, SoViT
:class:`TrainingCurves`            callback that plots the epoch metrics to a PNG
:func:`lr_multiplier`              warm-up + cosine/step learning-rate schedule
:func:`main`                       ``python -m lit_models`` / ``sqrtlayers-train``
=================================  ===============================================

Example (the default job: the small ResNet on the embedded digits)::

    python -m lit_models fit --config lit_models/configs/default.yaml
"""

from .classifier import ImageClassifier
from .cli import ClassifierCLI, main
from .models import ISqrtCovResNet, SmallResNet, SoViT, ZCAResNet
from .schedules import lr_multiplier
from .training_curves import TrainingCurves, plot_training_curves

__all__ = [
    "ClassifierCLI",
    "ISqrtCovResNet",
    "ImageClassifier",
    "SmallResNet",
    "SoViT",
    "TrainingCurves",
    "ZCAResNet",
    "lr_multiplier",
    "main",
    "plot_training_curves",
]
