"""`workload simulate`: the model's bounds (the controller's rate, parallelism, barriers against
dependencies, retries), its critical path, its timeline and its command line."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from workload import cli, errors, gantt, planner, simulate, timeline

pytestmark = pytest.mark.unit

# Pods of exactly one second: a fixed cost of 1 s, and rows and bytes that take no time.
ONE_SECOND = planner.Rates(
    pods_created_per_s=math.inf,
    pod_start_s=0.0,
    pod_fixed_s=1.0,
    merge_rows_per_s=1e15,
    final_rows_per_s=1e15,
)


def plan(files=16, *, fan_in=2, final_fan_in=2, parallelism=1000, form="steps", **rates):
    request = planner.Request(
        files=files,
        file_bytes=1,
        file_rows=1,
        storage="local",
        parallelism=parallelism,
        final_fan_in=final_fan_in,
        form=form,
        rates=planner.Rates(**{**ONE_SECOND.__dict__, **rates}),
    )
    return planner.evaluate(request, fan_in)


def of_level(run, level):
    return [a for a in run.attempts if a.level == level]


def test_the_controller_creates_pods_no_faster_than_its_rate():
    run = simulate.simulate(plan(files=64, final_fan_in=32, pods_created_per_s=4.0))
    created = sorted(a.created for a in of_level(run, 1))
    assert created == pytest.approx([i / 4.0 for i in range(32)])
    # 32 pods at 4/s: the last is created at 7.75 s and ends a second later
    assert max(a.finished for a in of_level(run, 1)) == pytest.approx(8.75)
    assert simulate.critical_by_level(run)[1]["create"] == pytest.approx(7.75)


def test_no_more_than_parallelism_pods_at_once_in_waves():
    run = simulate.simulate(plan(files=40, final_fan_in=20, parallelism=6, pod_start_s=0.5))
    level = of_level(run, 1)  # 20 pods in waves of 6: 4 waves of 1.5 s
    assert max(a.finished for a in level) == pytest.approx(4 * 1.5)
    for a in run.attempts:
        at_once = sum(b.created <= a.created < b.finished for b in run.attempts)
        assert at_once <= 6


def test_a_dag_does_not_wait_for_the_slowest_pod_of_a_level():
    shape = {"files": 32, "final_fan_in": 2}
    options = simulate.Options(jitter=0.5, seed=7)
    steps = simulate.simulate(plan(**shape, form="steps"), options)
    dag = simulate.simulate(plan(**shape, form="dag"), options)
    assert dag.makespan_s < steps.makespan_s
    ends = {(a.level, a.index): a.finished for a in dag.attempts}
    for a in dag.attempts:  # each waits for exactly its producers
        producers = [ends.get((a.level - 1, j), 0.0) for j in (2 * a.index, 2 * a.index + 1)]
        assert a.created == max(producers)
    for a in steps.attempts:  # each waits for its whole level before
        before = [b.finished for b in steps.attempts if b.level == a.level - 1]
        assert a.created == max(before, default=0.0)


def test_failed_attempts_are_retried_after_argo_backoff():
    options = simulate.Options(failure_rate=0.4, retries=20, seed=1)
    run = simulate.simulate(plan(files=32), options)
    assert run.ok and len(run.attempts) > run.plan.pods
    by_pod: dict = {}
    for a in run.attempts:
        by_pod.setdefault((a.level, a.index), []).append(a)
    for attempts in by_pod.values():
        assert [a.ok for a in attempts] == [False] * (len(attempts) - 1) + [True]
        for failed, retry in itertools.pairwise(attempts):
            wait = min(10 * 2**failed.attempt, 300)
            assert retry.created == pytest.approx(failed.finished + wait)


def test_a_pod_out_of_retries_fails_the_run_one_backoff_after_its_last_attempt():
    run = simulate.simulate(plan(files=4), simulate.Options(failure_rate=1.0, retries=2))
    assert not run.ok and run.failed.attempt == 2
    assert {a.level for a in run.attempts} == {1}  # no later level starts
    last = max(a.finished for a in run.attempts if a.index == run.failed.index)
    assert run.makespan_s == pytest.approx(last + 40)  # the waits: 10, 20, then 40 before failing
    assert "the run fails: l1 pod" in simulate.describe(run)


def test_a_cold_image_is_pulled_once_per_node():
    # 16 CPUs a node at 1 CPU a pod: parallelism 32 is 2 nodes
    p = plan(files=128, final_fan_in=64, parallelism=32, pod_start_s=5.0, cold_pull_s=50.0)
    run = simulate.simulate(p, simulate.Options(cold_image=True))
    first, second = sorted(of_level(run, 1), key=lambda a: a.created)[:32], of_level(run, 1)[32:]
    assert all(a.started == pytest.approx(55.0) for a in first)
    assert all(a.started - a.created == pytest.approx(5.0) for a in second)
    assert {a.node for a in first} == {0, 1}


@pytest.mark.parametrize("form", ["steps", "dag"])
@pytest.mark.parametrize("failure_rate", [0.0, 0.3])
def test_the_critical_path_tiles_the_makespan(form, failure_rate):
    p = plan(files=48, form=form, parallelism=5, pods_created_per_s=3.0, pod_start_s=2.0)
    run = simulate.simulate(p, simulate.Options(failure_rate=failure_rate, jitter=0.3, seed=4))
    path = run.critical
    assert path[0].start == 0.0 and path[-1].end == pytest.approx(run.makespan_s)
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(path))
    assert sum(sum(v.values()) for v in simulate.critical_by_level(run).values()) == (
        pytest.approx(run.makespan_s)
    )


def test_a_pod_s_fate_depends_on_the_seed_alone():
    options = simulate.Options(failure_rate=0.2, jitter=0.2, seed=3)
    once, again = (simulate.timeline(simulate.simulate(plan(), options)) for _ in range(2))
    other = simulate.timeline(simulate.simulate(plan(), simulate.Options(failure_rate=0.2, seed=4)))
    assert once == again and once["pods"] != other["pods"]


def test_it_agrees_with_the_planner_where_the_planner_is_exact():
    """Waves of pods all alike, no creation limit: the planner's estimate is the model's too
    (but its cold pull, which the simulator leaves to --cold-image)."""
    rates = planner.Rates(pods_created_per_s=math.inf)
    request = planner.Request(
        files=128, file_bytes=9_400_000, fan_in=2, form="steps", parallelism=16, rates=rates
    )
    p = planner.choose(request)
    run = simulate.simulate(p)
    levels = simulate.timeline(run)["levels"]
    cold = request.rates.cold_pull_s
    for lv, row in zip(p.levels, levels, strict=True):
        expected = lv.seconds - (cold if lv.level == 1 else 0.0)
        assert row["end"] - row["start"] == pytest.approx(expected, abs=0.01)


def test_argo_s_retry_strategy_is_the_one_build_renders():
    build = pytest.importorskip("workload.argo.build")
    assert build.BACKOFF.duration == f"{simulate.BACKOFF_S:g}s"
    assert build.BACKOFF.factor.root == simulate.BACKOFF_FACTOR
    assert build.BACKOFF.cap == f"{simulate.BACKOFF_CAP_S / 60:g}m"
    assert build.Options().retries == simulate.RETRIES


def test_the_command_writes_the_timeline_and_prints_the_levels(tmp_path, capsys):
    path = tmp_path / "timeline.json"
    args = ["simulate", "--files", "128", "--file-bytes", "9.4MB", "--fan-in", "2"]
    args += ["--timeline", str(path)]
    assert cli.main([*args, "--failure-rate", "0.05", "--pod-start-s", "2"]) == 0
    out = capsys.readouterr().out
    assert "pod start 2 s" in out and "makespan" in out
    doc = json.loads(path.read_text())
    assert doc["format"] == timeline.FORMAT and doc["ok"]
    assert [row["name"] for row in doc["levels"]] == ["l1", "l2", "final"]
    fields = {"level", "index", "attempt", "node", "created", "started", "finished", "ok"}
    assert all(set(p) == fields for p in doc["pods"])
    assert sum(row["attempts"] for row in doc["levels"]) == len(doc["pods"])


def test_the_gantt_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "gantt.png"
    run = simulate.simulate(plan(), simulate.Options(failure_rate=0.3))
    simulate.gantt(simulate.timeline(run), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, code, phrase",
    [
        (["--failure-rate", "1.5"], errors.EXIT_USAGE, "--failure-rate must be within 0..1"),
        (["--pods-created-per-s", "0"], errors.EXIT_USAGE, "--pods-created-per-s must be > 0"),
        (["--retries", "-1"], errors.EXIT_USAGE, "--retries must be an integer >= 0"),
        (["--timeline", "/no/such/dir/t.json"], errors.EXIT_USAGE, "its folder does not exist"),
        (["--fan-in", "8", "--files", "100000"], errors.EXIT_CONFIG, "MAX_WORKFLOW_SIZE"),
    ],
)
def test_bad_input_is_one_line_and_its_exit_code(capsys, args, code, phrase):
    assert cli.main(["simulate", "--files", "64", "--file-bytes", "14MB", *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0]


def test_without_matplotlib_the_gantt_chart_is_refused_with_a_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gantt.importlib.util, "find_spec", lambda name: None)
    args = ["simulate", "--files", "64", "--file-bytes", "14MB", "--gantt", str(tmp_path / "g.png")]
    assert cli.main(args) == errors.EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --gantt needs matplotlib: pip install 'workload[report]'"]
