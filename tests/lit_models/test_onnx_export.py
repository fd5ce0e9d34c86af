"""ONNX export (the dynamo exporter) in eval mode of every ready model and every layer/backend
pair, run by onnxruntime and compared with eager PyTorch (the full layer/backend grid under
``HYPOTHESIS_PROFILE=thorough``, every model and every backend by default).

A backend that ONNX cannot run (``eigh``, ``svd``: no eigendecomposition in ONNX) must refuse
with an error that names the backend to use instead; every other backend must export and agree
within float32 accuracy (README, "Deploying").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

import sqrtlayers as sl
from sqrtlayers.backends.onnx_export import EXPORTABLE_BACKENDS
from sqrtlayers.layers import ISqrtCovHead, SecondOrderViTHead, ZCABatchNorm

from ..conftest import THOROUGH
from .conftest import NETWORKS

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# Largest ONNX-vs-eager difference, relative to the largest output magnitude, that float32
# rounding explains: onnxruntime sums the products in another order, and the root of an
# ill-conditioned covariance (a head's rank-deficient features, kept definite by its eps)
# amplifies that by up to its condition number within the backend's declared float32 accuracy.
# Measured at most 1.4e-4 (README, "Deploying").
RELATIVE_TOLERANCE = 1e-3


def export_and_run(network: nn.Module, sample: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Export ``network`` with ``sample``, run the ONNX model on ``inputs`` in onnxruntime."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(network, (sample,), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (output,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    return torch.from_numpy(output)


def assert_agrees(onnx_out: torch.Tensor, eager_out: torch.Tensor) -> None:
    assert onnx_out.shape == eager_out.shape
    assert torch.isfinite(eager_out).all()
    scale = eager_out.abs().max()
    difference = (onnx_out - eager_out).abs().max()
    assert difference <= RELATIVE_TOLERANCE * scale, f"max |onnx - eager| = {difference:.3g}, max |eager| = {scale:.3g}"


# Layers that call their backend in eval mode, on the shape their input takes: a CNN feature
# map for the iSQRT-COV head, a token sequence (class token first) for the So-ViT head.
HEADS: dict[str, tuple[Callable[[str], nn.Module], tuple[int, ...]]] = {
    "isqrt_cov_head": (lambda backend: ISqrtCovHead(6, 3, reduced_dim=5, backend=backend), (2, 6, 3, 3)),
    "so_vit_head": (lambda backend: SecondOrderViTHead(8, 3, reduced_dim=5, backend=backend), (2, 7, 8)),
}

# The ZCA layer reads its backend only to refresh the stored whitening, in eager code when it
# turns to eval mode: the exported graph holds the whitening, so every backend exports.
LAYERS = {**HEADS, "zca_batchnorm": (lambda backend: ZCABatchNorm(6, group_size=3, backend=backend), (4, 6, 2, 2))}


def layer_cases() -> list[tuple[str, str, str]]:
    """Every layer with every backend under the ``thorough`` profile. By default (an export takes
    seconds) every backend once, on the heads in turn, and the ZCA layer with a backend that
    does not export itself."""
    if THOROUGH:
        return [("layer", layer, backend) for layer in sorted(LAYERS) for backend in sl.list_backends()]
    heads = sorted(HEADS)
    cases = [("layer", heads[i % len(heads)], backend) for i, backend in enumerate(sl.list_backends())]
    return [*cases, ("layer", "zca_batchnorm", "eigh")]


CASES = [("model", name, None) for name in sorted(NETWORKS)] + layer_cases()


def _build(kind: str, name: str, backend: str | None) -> tuple[nn.Module, tuple[int, ...]]:
    if kind == "model":
        return NETWORKS[name](3, 2, 16), (2, 2, 16, 16)
    factory, shape = LAYERS[name]
    layer = factory(backend)
    if name == "zca_batchnorm":
        layer.train()(torch.randn(32, *shape[1:]))  # statistics to whiten with
    return layer, shape


@pytest.mark.parametrize(("kind", "name", "backend"), CASES, ids=[f"{n}-{b}" if b else n for _, n, b in CASES])
def test_eval_export_matches_onnxruntime(kind, name, backend):
    network, shape = _build(kind, name, backend)
    network.eval()
    sample, other = torch.randn(shape), torch.randn(shape)
    if name in HEADS and backend not in EXPORTABLE_BACKENDS:
        with pytest.raises(Exception, match=rf"backend '{backend}' does not export to ONNX.*backend='accurate'"):
            export_and_run(network, sample, sample)
        return
    # Another input than the one traced, of the same shape: the graph is not tied to its sample.
    onnx_out = export_and_run(network, sample, other)
    with torch.no_grad():
        assert_agrees(onnx_out, network(other))


def test_every_backend_is_exportable_or_refused():
    """The list of exporting backends the README and the error message give is the registry's."""
    refused = {"eigh", "svd"}
    assert set(EXPORTABLE_BACKENDS) == set(sl.list_backends()) - refused
