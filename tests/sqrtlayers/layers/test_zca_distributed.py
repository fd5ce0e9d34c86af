"""ZCABatchNorm with synchronised statistics, in two gloo processes on CPU (one spawn for all cases).

- Two ranks holding parts of a batch compute what one process holding the whole batch computes
  (output, input gradient, parameter gradients summed over ranks as DDP does, running
  statistics), for uneven splits and for a split in which one rank holds zero samples.
- A step in which no rank holds a sample fails nowhere and leaves the running statistics alone.
- Three DDP training steps on uneven splits end where one process on the joint batches ends, and
  the checkpoint rank 0 saves loads in one process with ``torch.load(weights_only=True)`` and
  restores the whitening statistics bit-exactly.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sqrtlayers.layers import ZCABatchNorm, convert_zca_batchnorm, set_zca_sync

WORLD = 2
BATCH = 16
CHANNELS = 6  # in groups of 4: a full group and a short one
# name -> (samples on rank 0, backend); rank 1 holds the rest of the batch. Uneven on purpose: the
# global count must come from the all-reduce, not from the world size.
SPLITS: dict[str, tuple[int, str]] = {
    "uneven-eigh": (5, "eigh"),
    "uneven-mpa-lya": (5, "mpa-lya"),
    "rank0-empty-eigh": (0, "eigh"),
}
DDP_SPLITS = (3, 12, 7)  # rank 0's share of each of the three training steps
DDP_LR = 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (BATCH, CHANNELS, 3)
    mixing = torch.randn(CHANNELS, CHANNELS, generator=gen, dtype=torch.float64) + 2 * torch.eye(CHANNELS)
    x = torch.einsum("ij,njl->nil", mixing, torch.randn(shape, generator=gen, dtype=torch.float64)) + 1.0
    return x, torch.randn(shape, generator=gen, dtype=torch.float64)


def _part(rank: int, rank0_samples: int) -> slice:
    return slice(0, rank0_samples) if rank == 0 else slice(rank0_samples, BATCH)


def _model(backend: str) -> nn.Module:
    """A BatchNorm converted to ZCABatchNorm, sync switched on for the whole model afterwards, as
    a Lightning DDP setup would do."""
    model = convert_zca_batchnorm(nn.Sequential(nn.BatchNorm1d(CHANNELS)), group_size=4, backend=backend).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(0.5, 1.5, CHANNELS))
        model[0].bias.copy_(torch.linspace(-1.0, 1.0, CHANNELS))
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


def _network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(CHANNELS, CHANNELS, 1),
        ZCABatchNorm(CHANNELS, group_size=4, backend="eigh"),
        nn.Flatten(),
        nn.Linear(3 * CHANNELS, 2),
    ).double()


def _train(model: nn.Module, world: int, rank: int | None) -> None:
    """Three SGD steps; with ``rank`` given, on that rank's share of each batch, the loss scaled by
    the world size so that DDP's gradient average is the joint batch's gradient."""
    optimiser = torch.optim.SGD(model.parameters(), lr=DDP_LR)
    for step, rank0_samples in enumerate(DDP_SPLITS):
        x, upstream = _inputs(seed=10 + step)
        part = slice(None) if rank is None else _part(rank, rank0_samples)
        target = upstream[:, :2, 0]
        loss = world * (model(x[part]) * target[part]).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)  # two processes on what may be two cores
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        x, upstream = _inputs()
        results: dict[str, object] = {}
        for name, (rank0_samples, backend) in SPLITS.items():
            part = _part(rank, rank0_samples)
            results[name] = _run(set_zca_sync(_model(backend), True), x[part], upstream[part])

        nobody = set_zca_sync(_model("eigh"), True)
        empty = x[:0].clone().requires_grad_()
        out = nobody(empty)
        out.sum().backward()
        shapes = {"out_shape": tuple(out.shape), "grad_shape": tuple(empty.grad.shape)}
        results["nobody"] = {**shapes, **nobody.state_dict()}

        ddp = DistributedDataParallel(set_zca_sync(_network(), True))
        _train(ddp, WORLD, rank)
        network = ddp.module
        if rank == 0:
            torch.save(network.state_dict(), Path(out_dir) / "checkpoint.pt")
        results["ddp"] = {
            "state": {k: v.clone() for k, v in network.state_dict().items()},
            "eval_out": network.eval()(_inputs(seed=99)[0]).detach(),
        }
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    out_dir = tmp_path_factory.mktemp("zca_ddp")
    mp.spawn(_worker, args=(_free_port(), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(WORLD)], out_dir


@pytest.mark.parametrize("name", list(SPLITS))
def test_two_ranks_with_synced_stats_equal_one_process_with_the_whole_batch(spawned, name: str) -> None:
    ranks, _ = spawned
    x, upstream = _inputs()
    single = _run(_model(SPLITS[name][1]), x, upstream)
    per_rank = [r[name] for r in ranks]
    assert per_rank[0]["out"].shape[0] == SPLITS[name][0]
    exact = {"rtol": 0, "atol": 1e-12}
    torch.testing.assert_close(torch.cat([r["out"] for r in per_rank]), single["out"], **exact)
    torch.testing.assert_close(torch.cat([r["grad"] for r in per_rank]), single["grad"], **exact)
    # DDP sums (then averages) parameter gradients over ranks; the sum is the one-process gradient.
    for key in ("weight_grad", "bias_grad"):
        torch.testing.assert_close(sum(r[key] for r in per_rank), single[key], **exact)
    for key in ("running_mean", "running_whitening"):
        for r in per_rank:
            torch.testing.assert_close(r[key], single[key], **exact)


def test_unsynced_ranks_differ_from_the_whole_batch(spawned) -> None:
    """The comparison above can fail: without sync, a rank whitens with its own statistics."""
    ranks, _ = spawned
    x, upstream = _inputs()
    rank0_samples = SPLITS["uneven-eigh"][0]
    local = _run(_model("eigh"), x[:rank0_samples], upstream[:rank0_samples])
    assert (local["out"] - ranks[0]["uneven-eigh"]["out"]).abs().max() > 1e-2


def test_a_step_without_samples_on_any_rank_keeps_the_running_statistics(spawned) -> None:
    ranks, _ = spawned
    untouched_model = _model("eigh")
    # A training call marks the whitening for recomputation from the (unchanged) covariance: the
    # converted BatchNorm's own eval map is kept only until then.
    untouched_model[0].refresh_whitening()
    untouched = untouched_model.state_dict()
    for r in ranks:
        result = r["nobody"]
        assert result["out_shape"] == (0, CHANNELS, 3) and result["grad_shape"] == (0, CHANNELS, 3)
        for key in ("0.running_mean", "0.running_covariance"):
            assert torch.equal(result[key], untouched[key])
        torch.testing.assert_close(result["0.running_whitening"], untouched["0.running_whitening"], rtol=0, atol=0)
        assert int(result["0.num_batches_tracked"]) == 1


def test_ddp_training_on_uneven_splits_equals_one_process_on_the_joint_batches(spawned) -> None:
    ranks, _ = spawned
    single = _network()
    _train(single, 1, None)
    for r in ranks:
        for key, value in single.state_dict().items():
            torch.testing.assert_close(r["ddp"]["state"][key], value, rtol=0, atol=1e-12, msg=key)
    assert torch.equal(ranks[0]["ddp"]["state"]["1.running_whitening"], ranks[1]["ddp"]["state"]["1.running_whitening"])


def test_ddp_checkpoint_loads_alone_with_weights_only_and_restores_whitening_bit_exactly(spawned) -> None:
    ranks, out_dir = spawned
    state = torch.load(out_dir / "checkpoint.pt", weights_only=True)
    restored = _network()
    restored.load_state_dict(state)
    saved = ranks[0]["ddp"]["state"]
    for key in ("1.running_mean", "1.running_whitening", "1.num_batches_tracked"):
        assert torch.equal(restored.state_dict()[key], saved[key]), key
    assert not torch.equal(restored[1].running_whitening, _network()[1].running_whitening)  # it trained
    torch.testing.assert_close(restored.eval()(_inputs(seed=99)[0]), ranks[0]["ddp"]["eval_out"], rtol=0, atol=0)
