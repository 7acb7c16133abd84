"""The tree's arithmetic."""

from __future__ import annotations

import pytest

from workload import layout
from workload.errors import UsageError


@pytest.mark.parametrize(
    ("files", "fan_in", "final_fan_in", "levels", "shape"),
    [
        (128, 2, None, None, (128, 64, 32)),  # the seed's case
        (9, 2, 2, None, (9, 5, 3, 2)),
        (23, 3, 1, None, (23, 8, 3, 1)),
        (5, 2, None, None, (5,)),  # already few enough: the final pod reads l1
        (100, 4, None, 1, (100, 25)),
    ],
)
def test_plans(files, fan_in, final_fan_in, levels, shape):
    plan = layout.plan(files, fan_in, levels=levels, final_fan_in=final_fan_in)
    assert plan.files == shape
    assert plan.final_level == len(shape) and plan.final_count == shape[-1]
    for level in range(1, plan.levels + 1):
        assert layout.files_at(level + 1, files, fan_in) == shape[level]


def test_the_last_pod_of_an_odd_level_takes_fewer_inputs():
    assert layout.inputs(1, 4, 9, 2) == ["l1/8.parquet"]
    with pytest.raises(UsageError, match="file_number 5 is beyond level 1"):
        layout.inputs(1, 5, 9, 2)


def test_a_run_owns_everything_but_the_input():
    assert layout.run_path("", "l2/0.parquet") == "l2/0.parquet"
    assert layout.run_path("wf-x7k2p", "l1/3.parquet") == "l1/3.parquet"
    assert layout.run_path("wf-x7k2p", layout.MANIFEST) == layout.MANIFEST
    assert layout.run_path("wf-x7k2p", "l2/0.parquet") == "wf-x7k2p/l2/0.parquet"
    assert layout.run_path("wf-x7k2p", "l10/0.parquet") == "wf-x7k2p/l10/0.parquet"
    assert layout.run_path("wf-x7k2p", layout.SUMMARY) == "wf-x7k2p/result/summary.json"
    assert layout.run_path("wf-x7k2p", "") == "wf-x7k2p"


@pytest.mark.parametrize("bad", ["l1", "l2", "result", "a/b", "..", ".x", "-x", "x" * 254, "a b"])
def test_a_run_name_is_one_path_segment_the_layout_does_not_use(bad):
    with pytest.raises(UsageError, match=r"^--run "):
        layout.check_run(bad)


def test_two_runs_write_the_same_output_to_different_places(tmp_path):
    """A run's l2/0 is its own path (on an object store its temporary is named by a hash of that
    path, storage.Store.output), so two runs never touch each other's file or upload."""
    from workload.storage import open_store

    a, b = (open_store(str(tmp_path), run=run) for run in ("run-a", "run-b"))
    assert a.path("l2/0.parquet") != b.path("l2/0.parquet")
    assert a.path("l1/0.parquet") == b.path("l1/0.parquet")
    assert a.describe("result/summary.json").endswith("/run-a/result/summary.json")
    with a.output("l2/0.parquet") as out, open(out.path, "wb") as f:
        f.write(b"a")
    assert (tmp_path / "run-a" / "l2" / "0.parquet").read_bytes() == b"a"
    assert not (tmp_path / "run-b").exists()
