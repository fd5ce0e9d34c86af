"""ZCABatchNorm with synchronised statistics: two gloo processes holding parts of a batch compute
what one process holding the whole batch computes (output, input gradient, parameter gradients
summed over ranks as DDP does, running statistics)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from sqrtlayers.layers import ZCABatchNorm, convert_zca_batchnorm, set_zca_sync

# Uneven on purpose: the global count must come from the all-reduce, not from world size.
SPLIT = [5, 11]
SHAPE = (sum(SPLIT), 6, 3)  # 6 channels in groups of 4: a full group and a short one
BACKENDS = ("eigh", "mpa-lya")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    mixing = torch.randn(SHAPE[1], SHAPE[1], generator=gen, dtype=torch.float64) + 2 * torch.eye(SHAPE[1])
    x = torch.einsum("ij,njl->nil", mixing, torch.randn(SHAPE, generator=gen, dtype=torch.float64)) + 1.0
    return x, torch.randn(SHAPE, generator=gen, dtype=torch.float64)


def _model(backend: str) -> nn.Module:
    """A BatchNorm converted to ZCABatchNorm, sync switched on for the whole model afterwards, as
    a Lightning DDP setup would do."""
    model = convert_zca_batchnorm(nn.Sequential(nn.BatchNorm1d(SHAPE[1])), group_size=4, backend=backend).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(0.5, 1.5, SHAPE[1]))
        model[0].bias.copy_(torch.linspace(-1.0, 1.0, SHAPE[1]))
    return model


def _run(model: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_()
    out = model(x)
    (out * upstream).sum().backward()
    layer = model[0]
    return {
        "out": out.detach(),
        "grad": x.grad,
        "weight_grad": layer.weight.grad,
        "bias_grad": layer.bias.grad,
        "running_mean": layer.running_mean.clone(),
        "running_whitening": layer.running_whitening.clone(),
    }


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        x, upstream = _inputs()
        start = sum(SPLIT[:rank])
        part = slice(start, start + SPLIT[rank])
        results = {}
        for backend in BACKENDS:
            model = set_zca_sync(_model(backend), True)
            results[backend] = _run(model, x[part], upstream[part])
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, torch.Tensor]]]:
    out_dir = tmp_path_factory.mktemp("zca_ddp")
    mp.spawn(_worker, args=(len(SPLIT), _free_port(), str(out_dir)), nprocs=len(SPLIT), join=True)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(len(SPLIT))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_ranks_with_synced_stats_equal_one_process_with_the_whole_batch(ranks, backend: str) -> None:
    x, upstream = _inputs()
    single = _run(_model(backend), x, upstream)
    per_rank = [r[backend] for r in ranks]
    exact = {"rtol": 0, "atol": 1e-12}
    torch.testing.assert_close(torch.cat([r["out"] for r in per_rank]), single["out"], **exact)
    torch.testing.assert_close(torch.cat([r["grad"] for r in per_rank]), single["grad"], **exact)
    # DDP sums (then averages) parameter gradients over ranks; the sum is the one-process gradient.
    for key in ("weight_grad", "bias_grad"):
        torch.testing.assert_close(sum(r[key] for r in per_rank), single[key], **exact)
    for key in ("running_mean", "running_whitening"):
        for r in per_rank:
            torch.testing.assert_close(r[key], single[key], **exact)


def test_unsynced_ranks_differ_from_the_whole_batch(ranks) -> None:
    """The comparison above can fail: without sync, a rank whitens with its own statistics."""
    x, upstream = _inputs()
    local = _run(_model("eigh"), x[: SPLIT[0]], upstream[: SPLIT[0]])
    assert (local["out"] - ranks[0]["eigh"]["out"]).abs().max() > 1e-2
