"""Training the decoder of one level of universal style transfer: feature and pixel reconstruction."""

from typing import Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sqrtlayers.layers import mirror_decoder, vgg19_encoder
from sqrtlayers.layers.vgg_encoder import VGG19_LEVELS
from sqrtlayers.layers.input_checks import check_positive_int

Stage = Literal["train", "val", "test"]


class StyleDecoderTraining(pl.LightningModule):
    """Train the decoder of encoder level ``level`` to invert the encoder there, as the
    decoders of universal style transfer are trained (Li et al., 2017): for an image ``x``,
    ``f = E(x)`` its level-``level`` features and ``y = D(f)`` the decoded image,

        loss = pixel_weight * mse(y, x) + feature_weight * mse(E(y), f).

    The encoder is fixed (no gradient, eval mode); only the decoder is optimised, by Adam. The
    trained decoder goes into :class:`~sqrtlayers.layers.StyleTransfer` at its level
    (``decoders=[..., module.decoder, ...]``). Batches are images ``(N, 3, H, W)`` or
    ``(images, labels)`` pairs (labels ignored), so any :class:`~datamodules.ImageDataModule`
    serves, e.g. an :class:`~datamodules.ImageFolderDataModule` over a folder of photographs
    (``<data_dir>/train/<any folder>/*.jpg``), whose ImageNet normalisation is what
    torchvision's VGG-19 weights expect. Logged: ``{stage}_loss``, ``{stage}_pixel_loss``,
    ``{stage}_feature_loss``.

    Args:
        level (int): the encoder level whose decoder is trained, 1-based (3: ``relu3_1`` of
            VGG-19). Default: ``3``.
        encoder_weights (str | None): torchvision's VGG-19 weights file for the default
            encoder (see :func:`~sqrtlayers.layers.vgg19_encoder`); never downloaded. ``None``
            leaves it random, for tests only. Default: ``None``.
        encoder (nn.Module | None): a user's encoder instead, mapping images to the level's
            features (e.g. a stage sequence cut at that level). Default: ``None`` (VGG-19's
            first ``level`` stages).
        decoder (nn.Module | None): the decoder to train. Default: ``None``,
            :func:`~sqrtlayers.layers.mirror_decoder` of the encoder.
        lr (float): Adam learning rate. Default: ``1e-4``.
        pixel_weight (float): weight of the pixel reconstruction loss. Default: ``1.0``.
        feature_weight (float): weight of the feature reconstruction loss. Default: ``1.0``.

    Example:
        >>> module = StyleDecoderTraining(level=2)
        >>> images = torch.randn(2, 3, 16, 16)
        >>> module(images).shape                         # the reconstruction
        torch.Size([2, 3, 16, 16])
        >>> sorted(module.training_losses(images))
        ['feature_loss', 'loss', 'pixel_loss']
    """

    def __init__(
        self,
        level: int = 3,
        encoder_weights: str | None = None,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        lr: float = 1e-4,
        pixel_weight: float = 1.0,
        feature_weight: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive_int(level, "level")
        for name, value in (("lr", lr), ("pixel_weight", pixel_weight), ("feature_weight", feature_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if encoder is None:
            if level > len(VGG19_LEVELS):
                raise ValueError(f"level must be in 1..{len(VGG19_LEVELS)} for the VGG-19 encoder, got {level}")
            encoder = vgg19_encoder(encoder_weights, levels=level)
        elif encoder_weights is not None:
            raise ValueError(
                "encoder_weights are for the default VGG-19 encoder: load a given encoder's weights yourself"
            )
        self.save_hyperparameters(ignore=["encoder", "decoder"])
        self.encoder = encoder.requires_grad_(False).eval()
        self.decoder = mirror_decoder(list(encoder)) if decoder is None else decoder

    def train(self, mode: bool = True) -> "StyleDecoderTraining":
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        """The images encoded at the level and decoded."""
        return self.decoder(self.encoder(images))

    def training_losses(self, images: Tensor) -> dict[str, Tensor]:
        """``loss``, ``pixel_loss`` and ``feature_loss`` of a batch of images."""
        features = self.encoder(images)
        decoded = self.decoder(features)
        pixel = F.mse_loss(decoded, images)
        feature = F.mse_loss(self.encoder(decoded), features)
        return {"loss": self.hparams.pixel_weight * pixel + self.hparams.feature_weight * feature,
                "pixel_loss": pixel, "feature_loss": feature}  # fmt: skip

    def _shared_step(self, batch: Tensor | tuple[Tensor, ...] | list[Tensor], stage: Stage) -> Tensor:
        images = batch if isinstance(batch, Tensor) else batch[0]
        losses = self.training_losses(images)
        for name, value in losses.items():
            self.log(f"{stage}_{name}", value, prog_bar=name == "loss", on_step=stage == "train", on_epoch=True,
                     batch_size=images.shape[0], sync_dist=stage != "train")  # fmt: skip
        return losses["loss"]

    def training_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.decoder.parameters(), lr=self.hparams.lr)
