"""One source per setting: the dataclass fields make the flags, the presets override fields."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.__main__ import parser
from benchmarks.settings import (APP_PRESETS, GPU_DRY_RUN, PRESETS, AppSettings, StudySettings, from_arguments,
                                 mode_entry, split_list)  # fmt: skip


@pytest.mark.parametrize("cls, app", [(StudySettings, False), (AppSettings, True)])
def test_every_field_is_a_flag_and_nothing_else(cls: type, app: bool) -> None:
    dests = {a.dest for a in parser(app)._actions} - {"help", "preset"}
    assert dests == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("presets, cls", [(PRESETS, StudySettings), (APP_PRESETS, AppSettings)])
def test_presets_only_name_fields(presets: dict, cls: type) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    for name, overrides in presets.items():
        assert set(overrides) <= names, name
    assert set(GPU_DRY_RUN) <= {f.name for f in dataclasses.fields(StudySettings)}


def test_flags_are_parsed_by_the_field_type_and_override_the_preset() -> None:
    args = parser().parse_args(["--preset", "quick", "--shapes", "256x64,4x16", "--kappas", "1e1,1e4",
                                "--no-memory", "--backends", "eigh,mpa-lya[solver=newton;lya_iters=4]"])  # fmt: skip
    s = from_arguments(StudySettings, args, PRESETS, args.preset)
    assert s.shapes == [(256, 64), (4, 16)] and s.kappas == [10.0, 1e4] and s.memory is False
    assert s.backends == ["eigh", "mpa-lya[solver=newton;lya_iters=4]"]
    assert s.batches == PRESETS["quick"]["batches"] and s.repeats == PRESETS["quick"]["repeats"]
    assert from_arguments(StudySettings, parser().parse_args([]), PRESETS, "full") == StudySettings()


@pytest.mark.parametrize("argv, message", [
    (["--shapes", "64"], "--shapes: expected a comma-separated list of BxN shapes, got '64'"),
    (["--ops", "sqrt,cube"], "--ops: expected a comma-separated list of sqrt or inv, got 'sqrt,cube'"),
    (["--repeats", "0"], "argument --repeats: invalid int >= 1 value: '0'"),
])  # fmt: skip
def test_bad_values_exit_with_the_flag_and_value(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_split_list_keeps_commas_inside_brackets() -> None:
    assert split_list("a, b[x=(1,2);y=3] ,c,") == ["a", "b[x=(1,2);y=3]", "c"]


def test_mode_entries() -> None:
    assert mode_entry("compile:accurate[impl=triton]") == ("compile", "accurate[impl=triton]")
    assert mode_entry("cudagraph") == ("cudagraph", None)
    assert mode_entry("eager:accurate[impl=triton]") == ("eager", "accurate[impl=triton]")
    for bad in ("eager", "graph:eigh"):
        with pytest.raises(ValueError, match=rf"mode must be one of \('compile', 'cudagraph'\).*, got '{bad}'"):
            mode_entry(bad)


def test_gpu_preset_covers_the_issue_grid() -> None:
    gpu = PRESETS["gpu"]
    assert gpu["shapes"] == [(256, 64), (1024, 64), (1024, 16), (32, 256), (4, 16), (1, 64)]
    assert {"eigh", "mpa-lya", "accurate", "cupy.eigh"} == set(gpu["backends"])
    assert {"cudagraph:mpa-lya[solver=newton]", "cudagraph:accurate", "compile:accurate", "eager:accurate[impl=triton]",
            "cudagraph:accurate[impl=triton]"} == set(gpu["modes"])
    assert gpu["kappas"] == [1e4] and gpu["timing_kappa"] == 1e4 and gpu["plots"] is False
