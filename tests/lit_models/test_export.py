"""``torch.export.export`` of every builder's network in eval mode gives its eager output."""

import pytest
import torch

from .conftest import NETWORKS


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_eval_network_exports(name):
    network = NETWORKS[name](5, 2, 16).eval()
    images = torch.randn(3, 2, 16, 16)
    exported = torch.export.export(network, (images,))
    with torch.no_grad():
        expected = network(images)
        # Another batch, the same batch size: the exported graph is not tied to its sample.
        other = torch.randn(3, 2, 16, 16)
        torch.testing.assert_close(exported.module()(images), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(exported.module()(other), network(other), rtol=1e-4, atol=1e-5)
    assert expected.shape == (3, 5)
