"""The op seam: an op that only the tests know (tests/ops_distinct.py) runs through the tree,
the local runner and the rendered manifests, and gives DuckDB's answer."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from workload import errors, ops, run_local
from workload.argo.build import FORMS, TEMPLATE_NAME, Options
from workload.argo.expand import expand
from workload.argo.local import run
from workload.argo.validate import validate
from workload.generate import generate
from workload.settings import Settings
from workload.storage import open_store
from workload.testing.pods import REPO, cli, run_tree

OP = "ops_distinct:DISTINCT"
HERE = str(Path(__file__).resolve().parent)


@pytest.fixture
def tests_importable(monkeypatch):
    """Pods started as processes import the op from here, as a user's pods import theirs."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    )


def expected(root: str) -> list[tuple[int, int]]:
    sql = (
        f"SELECT key, count(DISTINCT category) FROM read_parquet('{root}/l1/*.parquet') "
        "GROUP BY key ORDER BY key"
    )
    return duckdb.sql(sql).fetchall()


def got(root: str, run: str = "") -> list[tuple[int, int]]:
    table = pq.read_table(f"{root}/{run + '/' if run else ''}result/distinct.parquet")
    return list(zip(table["key"].to_pylist(), table["categories"].to_pylist(), strict=True))


def sample(tmp_path, files=7) -> str:
    root = str(tmp_path / "root")
    generate(open_store(root), files, 1500, 120, seed=9)
    return root


def test_the_registry_and_import_paths():
    assert set(ops.OPS) == {"merge", "aggregate"}
    assert ops.get(OP).name == OP
    with pytest.raises(errors.ConfigError, match="cannot be imported"):
        ops.get("no_such_module:OP")


def test_a_test_only_op_runs_through_the_tree(tmp_path):
    root = sample(tmp_path)
    run_tree(root, OP, fan_in=2, final_fan_in=2)  # 7 -> 4 -> 2 -> result
    assert got(root) == expected(root)
    assert pq.read_schema(f"{root}/l2/0.parquet").names == ["key", "category"]


def test_a_test_only_op_runs_through_the_local_runner(tmp_path, tests_importable):
    root = str(tmp_path / "root")
    settings = Settings.load(root=root, op=OP)
    report = run_local.run(settings, files=6, rows=1000, keys=90, final_fan_in=2, workers=2)
    assert report["verified"] is None  # the manifest knows nothing of this op's result
    assert report["result"]["keys"] == 90 and got(root) == expected(root)
    result = cli(
        "run",
        "--root",
        root,
        "--op",
        OP,
        "--files",
        "6",
        "--rows",
        "1000",
        "--keys",
        "90",
        module="workload",
        env={"PYTHONPATH": HERE},
    )
    assert result.returncode == 0, result.stderr
    assert "not verified: op 'ops_distinct:DISTINCT'" in result.stdout


def test_a_test_only_op_runs_through_the_rendered_manifests(tmp_path, tests_importable):
    root = sample(tmp_path, files=9)
    options = Options(files=9, fan_in=2, final_fan_in=2, op=OP)
    for form in ("steps", "dag"):
        assert validate(FORMS[form](options).to_dict()) == []
    workflow = FORMS["workflow"](options).to_dict()
    templates = {TEMPLATE_NAME: FORMS["steps"](options).to_dict()}
    waves = expand(workflow, {"root": root}, templates, name="run-1")
    assert [len(w) for w in waves] == [5, 3, 2, 1]
    app = tmp_path / "app"
    app.mkdir()
    for script in ("process.py", "merge.py"):
        (app / script).write_text((REPO / "image" / script).read_text())
    run(waves, app, env={"PYTHONPATH": HERE})
    assert got(root, "run-1") == expected(root)
