"""Bad input at every public entry point: a ``TypeError`` or ``ValueError`` raised at the
entry point's own boundary, naming the bad value (as torch's own layers do).

One table of bad inputs (``TENSOR_CASES``, ``SIZE_CASES``, ``MODEL_CASES``) is walked over
one list of entry points per kind of argument (``TENSOR_ENTRIES``, ``SIZE_ENTRIES``,
``MODEL_ENTRIES``): a new layer or function is covered by adding it to a list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torchvision.models import ResNet, VisionTransformer
from torchvision.models.resnet import BasicBlock

import sqrtlayers as sl

timm = pytest.importorskip("timm")


@dataclass(frozen=True)
class TensorEntry:
    """A public layer or function of one tensor argument.

    ``build`` returns the callable (a fresh module in training mode, or a function);
    ``shape`` is a valid input; ``wrong_rank`` an input of a rank it refuses;
    ``wrong_channels`` an input with ``WRONG_CHANNEL_COUNT`` channels where ``channels`` are
    expected (for a matrix function, ``channels=None``, a shape that is not square), or ``None``
    where any count is valid or where the check belongs to the backbone's first layer.
    ``one_sample_training`` is ``None`` when one sample in training works, else the
    ``ValueError`` message (a regex) it raises, as :class:`~torch.nn.BatchNorm2d` does.
    ``empty_batch`` likewise: ``None`` when it works.
    """

    name: str
    build: Callable[[], Callable[[Tensor], Tensor]]
    shape: tuple[int, ...]
    wrong_rank: tuple[int, ...]
    wrong_channels: tuple[int, ...] | None = None
    channels: int | None = None
    one_sample_training: str | None = None
    empty_batch: str | None = None


def _zca_functional(x: Tensor) -> Tensor:
    return sl.zca_batch_norm(x, torch.zeros(8), torch.eye(8)[None], training=True)


def _zca_eval() -> nn.Module:
    return sl.ZCABatchNorm(8).eval()


def _timm_isqrt_cov() -> nn.Module:
    return sl.attach_isqrt_cov_head(timm.create_model("test_resnet", pretrained=False), 3, reduced_dim=4)


def _whitening_coloring() -> Callable[[Tensor], Tensor]:
    layer = sl.WhiteningColoring(group_size=4, backend="eigh")
    return lambda content: layer(content, torch.randn(1, 8, 7))


def _timm_so_vit() -> nn.Module:
    vit = timm.create_model("test_vit", pretrained=False, img_size=32)
    return sl.attach_so_vit_head(vit, 3, reduced_dim=4)


def _torchvision_so_vit() -> nn.Module:
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)
    return sl.attach_so_vit_head(vit, 3, reduced_dim=4)


#: The channel count of every ``wrong_channels`` input, none of the valid ones.
WRONG_CHANNEL_COUNT = 5

ONE_VALUE_PER_CHANNEL = r"Expected more than 1 value per channel when training, got input size torch.Size\(\[1, 8\]\)"

TENSOR_ENTRIES = [
    TensorEntry("sqrtm", lambda: sl.sqrtm, (3, 4, 4), (4,), (3, 4, 5)),
    TensorEntry("inv_sqrtm", lambda: sl.inv_sqrtm, (3, 4, 4), (4,), (3, 4, 5)),
    TensorEntry(
        "ZCABatchNorm", lambda: sl.ZCABatchNorm(8), (4, 8), (8,), (4, 5, 3), 8, one_sample_training=ONE_VALUE_PER_CHANNEL
    ),
    TensorEntry("ZCABatchNorm.eval", _zca_eval, (4, 8, 3, 3), (8,), (4, 5, 3, 3), 8),
    TensorEntry(
        "zca_batch_norm", lambda: _zca_functional, (4, 8), (8,), (4, 5), 8, one_sample_training=ONE_VALUE_PER_CHANNEL
    ),
    TensorEntry("CovariancePooling", lambda: sl.CovariancePooling(), (2, 8, 3, 3), (2, 8)),
    TensorEntry("covariance_pool", lambda: sl.covariance_pool, (2, 9, 8), (2, 3, 8, 3, 3)),
    TensorEntry("WhiteningColoring", _whitening_coloring, (2, 8, 3, 3), (2, 8), (2, 5, 3, 3), 8),
    TensorEntry(
        "whitening_coloring", lambda: lambda x: sl.whitening_coloring(x, torch.randn(1, 8, 6), backend="eigh"),
        (2, 8, 9), (8, 9), (2, 5, 9), 8,
    ),
    TensorEntry("ISqrtCovHead", lambda: sl.ISqrtCovHead(8, 3, reduced_dim=4), (2, 8, 3, 3), (2, 8, 9), (2, 5, 3, 3), 8),
    TensorEntry(
        "SecondOrderViTHead", lambda: sl.SecondOrderViTHead(16, 3, reduced_dim=4), (2, 10, 16), (2, 16), (2, 10, 5), 16
    ),
    TensorEntry("ISqrtCovNet(timm)", _timm_isqrt_cov, (2, 3, 48, 48), (3, 48, 48)),
    TensorEntry(
        "SecondOrderViT(timm)",
        _timm_so_vit,
        (2, 3, 32, 32),
        (3, 32, 32),
        empty_batch=r"images must hold at least one sample .*got shape \(0, 3, 32, 32\)",
    ),
    TensorEntry("SecondOrderViT(torchvision)", _torchvision_so_vit, (2, 3, 32, 32), (2, 3, 32)),
]


@dataclass(frozen=True)
class Expected:
    """What a case expects: ``error`` raised with every regex of ``names`` in its message, or
    (``error=None``) a finite output whose first dim is ``batch``."""

    input: Any
    error: type[Exception] | None
    names: tuple[str, ...] = ()
    batch: int | None = None


def _shape_names(shape: tuple[int, ...]) -> str:
    """A regex for a shape as an error message may write it: ``(2, 8)`` or ``torch.Size([2, 8])``."""
    return f"({re.escape(str(shape))}|{re.escape(str(torch.Size(shape)))})"


def _good(entry: TensorEntry, dtype: torch.dtype = torch.float32, shape: tuple[int, ...] | None = None) -> Tensor:
    shape = entry.shape if shape is None else shape
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if len(shape) == 3 and shape[-1] == shape[-2]:  # a batch of SPD matrices
        x = x @ x.mT + torch.eye(shape[-1])
    return x.to(dtype)


def _dtype_case(dtype: torch.dtype) -> Callable[[TensorEntry], Expected]:
    return lambda entry: Expected(_good(entry, dtype), TypeError, (re.escape(str(dtype)),))


def _wrong_channels(entry: TensorEntry) -> Expected:
    if entry.wrong_channels is None:
        pytest.skip(f"{entry.name} takes any channel count, or leaves the check to its backbone")
    if entry.channels is None:  # a matrix function: the shape that is not square
        names: tuple[str, ...] = (_shape_names(entry.wrong_channels),)
    else:  # the bad channel count and the expected one
        assert WRONG_CHANNEL_COUNT in entry.wrong_channels
        names = (rf"\b{WRONG_CHANNEL_COUNT}\b", rf"\b{entry.channels}\b")
    return Expected(torch.randn(entry.wrong_channels), ValueError, names)


def _empty_batch(entry: TensorEntry) -> Expected:
    shape = (0, *entry.shape[1:])
    if entry.empty_batch is not None:
        return Expected(torch.zeros(shape), ValueError, (entry.empty_batch,))
    return Expected(torch.zeros(shape), None, batch=0)


def _one_sample(entry: TensorEntry) -> Expected:
    x = _good(entry, shape=(1, *entry.shape[1:]))
    if entry.one_sample_training is not None:
        return Expected(x, ValueError, (entry.one_sample_training,))
    return Expected(x, None, batch=1)


TENSOR_CASES: dict[str, Callable[[TensorEntry], Expected]] = {
    "int64": _dtype_case(torch.int64),
    "uint8": _dtype_case(torch.uint8),
    "bool": _dtype_case(torch.bool),
    "complex64": _dtype_case(torch.complex64),
    "list": lambda entry: Expected(_good(entry).tolist(), TypeError, ("list",)),
    "wrong_rank": lambda entry: Expected(torch.randn(entry.wrong_rank), ValueError, (_shape_names(entry.wrong_rank),)),
    "wrong_channels": _wrong_channels,
    "empty_batch": _empty_batch,
    "one_sample_training": _one_sample,
    "valid": lambda entry: Expected(_good(entry), None, batch=entry.shape[0]),
}


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
@pytest.mark.parametrize("entry", TENSOR_ENTRIES, ids=lambda entry: entry.name)
def test_tensor_input(entry: TensorEntry, case: str) -> None:
    expected = TENSOR_CASES[case](entry)
    call = entry.build()
    if expected.error is None:
        out = call(expected.input)
        assert out.shape[0] == expected.batch and torch.isfinite(out).all()
        return
    with pytest.raises(expected.error) as caught:
        call(expected.input)
    for name in expected.names:
        assert re.search(name, str(caught.value)), f"{name!r} not in {str(caught.value)!r}"


#: Integer size arguments: a builder taking the bad value.
SIZE_ENTRIES: dict[str, Callable[[Any], object]] = {
    "ZCABatchNorm(num_features)": lambda v: sl.ZCABatchNorm(v),
    "ISqrtCovHead(in_channels)": lambda v: sl.ISqrtCovHead(v, 3),
    "ISqrtCovHead(num_classes)": lambda v: sl.ISqrtCovHead(8, v),
    "ISqrtCovHead(reduced_dim)": lambda v: sl.ISqrtCovHead(8, 3, reduced_dim=v),
    "SecondOrderViTHead(embed_dim)": lambda v: sl.SecondOrderViTHead(v, 3),
    "SecondOrderViTHead(num_classes)": lambda v: sl.SecondOrderViTHead(16, v),
    "SecondOrderViTHead(reduced_dim)": lambda v: sl.SecondOrderViTHead(16, 3, reduced_dim=v),
    "SecondOrderViTHead(num_prefix_tokens)": lambda v: sl.SecondOrderViTHead(16, 3, num_prefix_tokens=v),
    "attach_isqrt_cov_head(num_classes)": lambda v: sl.attach_isqrt_cov_head(ResNet(BasicBlock, [1, 1, 1, 1]), v),
    "attach_isqrt_cov_head(timm, num_classes)": lambda v: sl.attach_isqrt_cov_head(
        timm.create_model("test_resnet", pretrained=False), v
    ),
    "attach_so_vit_head(num_classes)": lambda v: sl.attach_so_vit_head(_torchvision_so_vit().vit, v),
}

#: Bad values of an integer size: (value, error, regex the message names).
SIZE_CASES = {
    "zero": (0, ValueError, r"got 0\b"),
    "negative": (-3, ValueError, r"got -3\b"),
    "float": (2.5, TypeError, r"got 2\.5\b"),
    "bool": (True, TypeError, r"got True\b"),
    "str": ("8", TypeError, r"got '8'"),
}


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
@pytest.mark.parametrize("entry", sorted(SIZE_ENTRIES))
def test_size_argument(entry: str, case: str) -> None:
    value, error, name = SIZE_CASES[case]
    argument = re.search(r"(\w+)\)$", entry).group(1)
    with pytest.raises(error, match=rf"^{argument} must be an int >= 1, {name}"):
        SIZE_ENTRIES[entry](value)


#: Model arguments of the attach helpers.
MODEL_ENTRIES: dict[str, Callable[[Any], object]] = {
    "attach_isqrt_cov_head": lambda model: sl.attach_isqrt_cov_head(model, 3),
    "attach_so_vit_head": lambda model: sl.attach_so_vit_head(model, 3),
}

#: Bad models: (model factory, regex the message names). Every one is a TypeError.
MODEL_CASES: dict[str, tuple[Callable[[], object], str]] = {
    "str": (lambda: "resnet18", r"got str\b"),
    "none": (lambda: None, r"got NoneType\b"),
    "linear": (lambda: nn.Linear(2, 2), r"got Linear without \["),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
@pytest.mark.parametrize("entry", sorted(MODEL_ENTRIES))
def test_model_argument(entry: str, case: str) -> None:
    build, name = MODEL_CASES[case]
    with pytest.raises(TypeError, match=name):
        MODEL_ENTRIES[entry](build())


def test_wrong_kind_of_timm_model() -> None:
    with pytest.raises(TypeError, match=r"got the timm model ResNet: for a CNN use attach_isqrt_cov_head"):
        sl.attach_so_vit_head(timm.create_model("test_resnet", pretrained=False), 3)
