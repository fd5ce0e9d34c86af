"""Every network x datamodule pair runs one train, val and test batch through Lightning."""

import math

import pytest
import pytorch_lightning as pl

from lit_models import ImageClassifier
from sqrtlayers.layers import ZCABatchNorm

from .conftest import DATAMODULES, NETWORKS


@pytest.mark.parametrize("data_name", sorted(DATAMODULES))
@pytest.mark.parametrize("network_name", sorted(NETWORKS))
def test_fast_dev_run(network_name, data_name, data_root, no_network):
    datamodule = DATAMODULES[data_name](data_root)
    network = NETWORKS[network_name](
        datamodule.num_classes, datamodule.num_channels, datamodule.image_size
    )
    module = ImageClassifier(network, num_classes=datamodule.num_classes, lr=0.01)
    trainer = pl.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    metrics = dict(trainer.callback_metrics)
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics.update(trainer.callback_metrics)

    for name in ("train_loss_epoch", "val_loss", "val_acc", "test_loss", "test_acc"):
        assert math.isfinite(float(metrics[name])), name
    assert ("test_acc_top5" in metrics) == (datamodule.num_classes > 5)
    # One training step went through every ZCA layer and updated its statistics.
    for layer in network.modules():
        if isinstance(layer, ZCABatchNorm):
            assert int(layer.num_batches_tracked) == 1
