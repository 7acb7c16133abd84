"""`workload report` (workload/report.py) on its three sources: an Argo Workflow's status (the
fixture's numbers known by hand, tests/fixtures/make_argo_status_report.py), a local run's
timeline and the simulator's, at 100k pods too."""

from __future__ import annotations

import base64
import gzip
import io
import itertools
import json
import pathlib
import subprocess
import sys

import pytest

from workload import cli, errors, layout, planner, report, run_local, simulate, timeline
from workload.argo import status
from workload.gantt import gantt
from workload.settings import Settings

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "argo-status-report.json"
PNG = b"\x89PNG\r\n\x1a\n"


def _report(doc: dict) -> dict:
    return report.report(doc)


def _read(text: str) -> dict:
    return timeline.read(io.StringIO(text))


def _compressed(workflow: dict) -> dict:
    out = json.loads(json.dumps(workflow))
    nodes = out["status"].pop("nodes")
    raw = json.dumps(nodes, separators=(",", ":")).encode()
    out["status"]["compressedNodes"] = base64.b64encode(gzip.compress(raw)).decode()
    return out


def _spread(median, p95, known):
    return {"median": median, "p95": p95, "known": known}


@pytest.mark.unit
def test_the_fixture_gives_the_numbers_known_by_hand():
    r = _report(_read(FIXTURE.read_text()))
    assert (r["source"], r["form"], r["ok"], r["makespan_s"]) == ("argo", "steps", False, 69.0)
    assert (r["pods"], r["attempts"], r["after_last_pod_s"]) == (12, 14, 1.0)
    l1, l2 = r["levels"]
    assert (l1["name"], l1["pods"], l1["attempts"], l1["retries"], l1["failed"]) == (
        "l1",
        8,
        9,
        1,
        0,
    )
    assert (l2["name"], l2["pods"], l2["attempts"], l2["retries"], l2["failed"]) == (
        "l2",
        4,
        5,
        1,
        1,
    )
    assert (l1["start"], l1["end"], l2["start"], l2["end"]) == (1.0, 41.0, 42.0, 68.0)
    # l1: the failed first attempt of pod 2 wrote no metrics line: 8 of 9 attempts known
    assert l1["pending_s"] == _spread(4.0, 5.0, 8)
    assert l1["startup_s"] == _spread(1.0, 2.0, 8)
    assert l1["work_s"] == _spread(3.0, 4.0, 8)
    assert l1["storage_s"] == _spread(3.0, 31.0, 8)
    assert l1["duration_s"] == _spread(12.0, 40.0, 9)  # 7, 11, 12 x 3, 13 x 3, 40
    assert (l1["rows_in"], l1["storage_mb_per_s"]) == (1600, 1.0)  # 8 x 6.5 MiB in 52 s
    # durations of the successes 11, 12 x 3, 13 x 3, 40: median 12.5, MAD 0.5
    assert l1["straggler_threshold_s"] == 18.75  # max(1.5 x 12.5, 12.5 + 3 x 1.4826 x 0.5)
    assert l1["stragglers"] == [
        {"index": 5, "attempt": 0, "node": "cn-hangzhou.10.0.0.15", "duration_s": 40.0}
    ]
    assert l2["pending_s"] == _spread(3.0, 3.0, 3) and l2["work_s"] == _spread(3.0, 4.0, 3)
    assert l2["duration_s"] == _spread(11.0, 12.0, 5)  # 8, 8, 11, 11, 12
    assert (l2["rows_in"], l2["storage_mb_per_s"], l2["stragglers"]) == (600, 2.167, [])
    # the critical path: l1's straggler (0 -> 41 s), then l2's failed pod (41 -> 68 s)
    assert (l1["critical_s"], l1["critical_share"]) == (41.0, round(41 / 69, 4))
    assert (l2["critical_s"], l2["critical_share"]) == (27.0, round(27 / 69, 4))
    assert l1["critical_pod"] == {"index": 5, "attempt": 0, "wait_s": 1.0, "retry_s": 0.0}
    assert l2["critical_pod"] == {"index": 1, "attempt": 1, "wait_s": 1.0, "retry_s": 18.0}
    assert [(c["level"], c["index"], c["from"], c["to"]) for c in r["critical_path"]] == [
        (1, 5, 0.0, 41.0),
        (2, 1, 41.0, 68.0),
    ]
    assert r["unknown"] == []


@pytest.mark.unit
def test_the_compressed_nodes_give_the_same_report():
    workflow = json.loads(FIXTURE.read_text())
    plain = _report(_read(json.dumps(workflow)))
    assert _report(_read(json.dumps(_compressed(workflow)))) == plain


@pytest.mark.unit
def test_the_command_prints_the_table_and_writes_the_json(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert cli.main(["report", str(FIXTURE), "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("argo run process-data-r3port, steps form, failed: 12 pods in 14")
    assert "stragglers in l1 (over 18.8 s): pod 5 (40.0 s on cn-hangzhou.10.0.0.15)" in out
    assert "critical path: l1 41.0 s (pod 5), l2 27.0 s (pod 1); after the last pod 1.00 s" in out
    assert json.loads(path.read_text()) == _report(_read(FIXTURE.read_text()))


@pytest.mark.unit
def test_a_pretty_printed_status_on_stdin_in_small_chunks(monkeypatch, capsys):
    """kubectl indents its JSON; the stream's chunks end anywhere, in a number too."""
    text = json.dumps(json.loads(FIXTURE.read_text()), indent=4)
    from workload import jsonstream

    monkeypatch.setattr(jsonstream, "CHUNK", 7)
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert cli.main(["report", "-"]) == 0
    assert "12 pods in 14 attempts" in capsys.readouterr().out


@pytest.mark.unit
def test_an_argo_status_of_the_node_model_parses_with_its_phases():
    """status.py's builders: a 2,000-file dag run, each pod's process starting 2-8 s after its
    creation, 1.5 s of start-up."""
    shape = layout.plan(2000, 4)
    pods = [shape.pods(level) for level in range(1, shape.levels + 1)] + [1]
    listed = status.nodes(pods, fan_in=4, form="dag")
    workflow = {"metadata": {"name": status.WORKFLOW_NAME}, "status": {"phase": "Succeeded"}}
    workflow["status"]["nodes"] = {n["id"]: n for n in listed}
    for doc in (workflow, _compressed(workflow)):
        r = _report(_read(json.dumps(doc)))
        assert [row["pods"] for row in r["levels"]] == pods and r["form"] == "dag"
        assert [row["name"] for row in r["levels"]][-1] == "final"
        l1 = r["levels"][0]
        assert 2.0 <= l1["pending_s"]["median"] <= 8.0 and l1["startup_s"]["median"] == 1.5
        assert l1["rows_in"] > 0 and l1["storage_mb_per_s"] > 0


def test_a_large_status_is_read_as_a_stream(tmp_path):
    """The node model's status of 5,000 files (4,985 pods, 13 MB), written node by node and
    read in a fresh process; the speed at 100k pods is benchmarks/report_100k.py's to
    measure."""
    shape = layout.plan(5_000, 2)
    pods = [shape.pods(level) for level in range(1, shape.levels + 1)] + [1]
    path = tmp_path / "status.json"
    with open(path, "w") as f:
        f.write(f'{{"metadata": {{"name": "{status.WORKFLOW_NAME}"}}, ')
        f.write('"status": {"phase": "Succeeded", "nodes": {')
        for i, n in enumerate(status.nodes(pods, fan_in=2, form="steps")):
            f.write(("," if i else "") + json.dumps(n["id"]) + ":" + json.dumps(n))
        f.write("}}}")
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "workload", "report", str(path), "--json", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    r = json.loads(out.read_text())
    assert r["pods"] == sum(pods) == 4_985 and [row["pods"] for row in r["levels"]] == pods


@pytest.mark.unit
def test_a_local_run_gives_its_tree_and_phases_within_each_pod(tmp_path):
    settings = Settings.load(root=str(tmp_path / "data"), fan_in=2)
    done = run_local.run(settings, files=16, rows=2_000, keys=500, workers=2, final_fan_in=2)
    path = tmp_path / "timeline.json"
    timeline.dump(done["timeline"], str(path))
    with open(path) as f:
        doc = timeline.read(f, str(path))
    r = _report(doc)
    assert [row["name"] for row in r["levels"]] == ["l1", "l2", "l3", "final"]
    assert (
        [row["pods"] for row in r["levels"]]
        == [8, 4, 2, 1]
        == [row["pods"] for row in done["levels"]]
    )
    assert r["unknown"] == [] and r["ok"] and r["source"] == "local"
    for p in doc["pods"]:
        t = report.phases(p)
        assert all(t[name] >= 0 for name in report.PHASES), (p, t)
        # the pod's own time follows its start-up within its duration; a level pod's work and
        # storage are each within it (they overlap: it reads ahead while it computes; the final
        # pod's compute_s adds up its reader threads')
        assert t["pending"] + t["startup"] + p["total_s"] <= t["duration"] + 1e-3
        if p["level"] != doc["levels"][-1]["level"]:
            assert t["work"] <= p["total_s"] and t["storage"] <= p["total_s"] + 1e-3
    assert sum(row["critical_s"] for row in r["levels"]) <= r["makespan_s"] + 1e-3


def _plan_100k(form: str) -> planner.Plan:
    """The planner's evaluation of 100,000 files at fan-in 2: 99,980 pods (beyond Argo's
    workflow size, so `workload simulate` refuses it; the simulator does not mind)."""
    request = planner.Request(
        files=100_000, file_bytes=14_000_000, storage="local", parallelism=1000, form=form
    )
    return planner.evaluate(request, 2)


def test_a_simulated_hundred_thousand_pod_run_and_its_gantt_chart(tmp_path):
    run = simulate.simulate(_plan_100k("steps"))
    doc = simulate.timeline(run)
    assert len(doc["pods"]) == 99_980
    r = _report(_read(json.dumps({"plan": {}, "timeline": doc})))  # as simulate --json prints
    for mine, theirs in zip(r["levels"], doc["levels"], strict=True):
        for key in ("name", "pods", "attempts", "retries", "start", "end"):
            assert mine[key] == theirs[key]
        assert mine["critical_s"] == pytest.approx(theirs["critical_s"], abs=0.01)
    assert r["makespan_s"] == doc["makespan_s"]
    assert set(r["unknown"]) == {"startup", "storage"}
    pytest.importorskip("matplotlib")
    png = tmp_path / "gantt.png"
    gantt(doc, str(png))
    data = png.read_bytes()
    assert data[:8] == PNG and 10_000 < len(data) < 2_000_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 1080)


@pytest.mark.unit
def test_the_dag_form_follows_each_pods_producers():
    run = simulate.simulate(
        planner.evaluate(
            planner.Request(files=64, file_bytes=14_000_000, storage="local", form="dag"), 2
        ),
        simulate.Options(jitter=0.5, seed=3),
    )
    doc = simulate.timeline(run)
    r = _report(doc)
    chain = r["critical_path"]
    assert [c["level"] for c in chain] == [row["level"] for row in r["levels"]]
    for before, after in itertools.pairwise(chain):
        assert before["to"] == after["from"]
        if after["level"] != chain[-1]["level"]:  # a level pod reads its producers' outputs
            assert after["index"] == before["index"] // 2
    assert chain[-1]["to"] == pytest.approx(r["makespan_s"])


@pytest.mark.unit
@pytest.mark.parametrize(
    "text, phrase",
    [
        ("not json", "is not the JSON expected: an object at character 0"),
        ('{"kind": "Workflow", "metadata": {}}', "neither a Workflow with a status nor a timeline"),
        ('{"format": "workload.timeline/9", "pods": [], "levels": []}', "format"),
        ('{"status": {"nodes": {}}}', "no pod nodes"),
        ('{"status": {"compressedNodes": "!!"}}', "not base64"),
        ('{"status": {"nodes": {"a": {"type": "Pod", "templateName": "merge-data"}}}}', "level"),
        ('{"status": {"nodes": {"a": {"type": "Ste', "not JSON: Unterminated string"),
    ],
)
def test_bad_input_is_one_line_and_exit_66(tmp_path, capsys, text, phrase):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert cli.main(["report", str(path)]) == errors.EXIT_DATA
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0], err


@pytest.mark.unit
def test_a_missing_file_or_folder_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "none.json")]) == errors.EXIT_USAGE
    bad = ["report", str(FIXTURE), "--json", str(tmp_path / "no" / "r.json")]
    assert cli.main(bad) == errors.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such file" in err[0] and "its folder does not exist" in err[1]


@pytest.mark.unit
@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_what_follows_the_nodes_is_read_whatever_the_buffer(chunk):
    """Argo v3.5 to v3.7 write taskResultsCompletionStatus, a map keyed by node ids, after the
    nodes, and storedTemplates (where the fan-in is found) after that; strings may hold what
    looks like JSON."""
    from workload import jsonstream
    from workload.argo import history

    name = "wf-abc"

    def node(i: int, kind: str) -> dict:
        return {
            "id": f"{name}-{i}",
            "name": f"{name}[0].process-data-l1({i}:{i})" + ("(0)" if kind == "Pod" else ""),
            "type": kind,
            "templateName": "process-data",
            "phase": "Succeeded",
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": f"2026-01-01T00:00:0{i}Z",
            "inputs": {
                "parameters": [
                    {"name": "level", "value": "1"},
                    {"name": "file_number", "value": str(i)},
                ]
            },
            "outputs": {
                "parameters": [{"name": "metrics", "value": '{"rows_in": 5, "x": "\\"k-1\\": {"}'}]
            },
        }

    nodes = {name: {"id": name, "name": name, "type": "Steps", "phase": "Succeeded"}}
    nodes |= {f"{name}-{i}": node(i, "Pod" if i % 2 else "Retry") for i in range(1, 8)}
    doc = {
        "metadata": {"name": name},
        "status": {
            "phase": "Succeeded",
            "startedAt": "2026-01-01T00:00:00Z",
            "nodes": nodes,
            "taskResultsCompletionStatus": dict.fromkeys(nodes, True),
            "storedTemplates": {"x": {"container": {"args": ["--fan-in", "3"]}}},
        },
    }
    stream = jsonstream.Stream(io.StringIO(json.dumps(doc, indent=1)), chunk=chunk)
    top = {}
    for key in stream.members():
        if key == "status":
            read = history.read_status(stream)
        else:
            top[key] = stream.value()
    stream.end()
    doc = timeline.of_workflow(top, read)
    assert [p["index"] for p in doc["pods"]] == [1, 3, 5, 7]
    assert all(p["rows_in"] == 5 for p in doc["pods"]) and doc["fan_in"] == 3
