"""The simulator against the local runner at small scale: configured for this machine (its
parallelism the runner's workers, its pod start the runner's own cost of a pod process, its
rates fitted to one run), it predicts each level of a run of another shape within TOLERANCE.

The runner is the steps form with no controller: a level starts when the one before ends, at
most `workers` pods at once, each a fresh process. At these sizes a pod is mostly fixed cost
(on this 2-core machine, busy: 20-30 ms to start a pod process, 30-50 ms of fixed cost in the
pod, against 20-110 ms of rows), so the prediction mostly checks the waves: 12 pods on 2
workers, then 6, then 3 (a last wave of one), each level after the one before. Timings on a
shared machine wander, so the shapes are run in turn, REPEATS times, and the fastest time of
each level kept; and a level is allowed FLOOR_S however short it is."""

from __future__ import annotations

import dataclasses
import math
import os
import time

from workload import planner, run_local, simulate
from workload.settings import Settings

TOLERANCE = 0.35  # of the measured level time
FLOOR_S = 0.15  # allowed on any level: about one pod's fixed cost here, the noise of one wave
WORKERS = 2
REPEATS = 2
FAN_IN = 2
KEYS = 5_000
CALIBRATION = {"files": 16, "rows": 20_000, "final_fan_in": 2}  # 16 -> 8 -> 4 -> 2 -> result
CHECK = {"files": 24, "rows": 30_000, "final_fan_in": 3}  # 24 -> 12 -> 6 -> 3 -> result


def _measure(root: str) -> dict[str, tuple[dict[str, float], int]]:
    """Per shape, its seconds per level, the fastest of REPEATS runs taken in turn with the
    other shape's (a shared machine's load changes from second to second), and the bytes of
    one of its input files."""
    best: dict[str, dict[str, float]] = {"calibration": {}, "check": {}}
    for _ in range(REPEATS):
        for name, shape in (("calibration", CALIBRATION), ("check", CHECK)):
            settings = Settings.load(root=os.path.join(root, name), fan_in=FAN_IN)
            report = run_local.run(settings, keys=KEYS, workers=WORKERS, **shape)
            for row in report["levels"]:
                seconds = best[name].get(row["level"], math.inf)
                best[name][row["level"]] = min(seconds, row["seconds"])
    size = {name: os.path.getsize(os.path.join(root, name, "l1", "0.parquet")) for name in best}
    return {name: (best[name], size[name]) for name in best}


def _pod_overhead() -> float:
    """The runner's cost of one pod process that does nothing, per worker."""
    run_local.run_pods(abs, [(0,)], 1)  # the forkserver starts here, once per test process
    pods = 40
    started = time.perf_counter()
    run_local.run_pods(abs, [(0,)] * pods, WORKERS)
    return (time.perf_counter() - started) * WORKERS / pods


def _plan(shape: dict, file_bytes: int, rates: planner.Rates) -> planner.Plan:
    request = planner.Request(
        files=shape["files"],
        file_bytes=file_bytes,
        file_rows=shape["rows"],
        storage="local",
        parallelism=WORKERS,
        final_fan_in=shape["final_fan_in"],
        form="steps",
        rates=rates,
    )
    return planner.evaluate(request, FAN_IN)


def _calibrate(seconds: dict[str, float], shape: dict, start_s: float) -> planner.Rates:
    """Rates that fit a run: a process pod's time t = start + fixed + rows / rate by least
    squares over the process levels (t from a level's time and its waves), the final pod's
    rate from what is left of its time."""
    plan = _plan(shape, 1, planner.Rates())
    rows = shape["files"] * shape["rows"]  # every level's, as merge rewrites every row
    points = []
    for lv in plan.levels[:-1]:
        waves = math.ceil(lv.pods / WORKERS)
        points.append((rows / lv.pods, seconds[f"l{lv.level}"] / waves))
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = max(sum((x - mean_x) * (y - mean_y) for x, y in points) / spread, 1e-12)
    fixed = max(mean_y - slope * mean_x - start_s, 0.0)
    final_s = max(seconds["final"] - start_s - fixed, 1e-3)
    return planner.Rates(
        pods_created_per_s=math.inf,  # no controller: the pool starts a pod as soon as it can
        pod_start_s=start_s,
        cold_pull_s=0.0,
        pod_fixed_s=fixed,
        merge_rows_per_s=1 / slope,
        final_rows_per_s=rows / final_s,
    )


def test_the_simulator_predicts_the_local_runner_per_level(tmp_path):
    start_s = _pod_overhead()
    runs = _measure(str(tmp_path))
    rates = _calibrate(runs["calibration"][0], CALIBRATION, start_s)
    measured, size = runs["check"]
    run = simulate.simulate(_plan(CHECK, size, rates))
    predicted = {row["name"]: row["end"] - row["start"] for row in simulate.timeline(run)["levels"]}

    table = [f"{dataclasses.asdict(rates)}"]
    table += [
        f"{name}: predicted {predicted[name]:.3f} s, measured {seconds:.3f} s"
        for name, seconds in measured.items()
    ]
    report = "\n".join(table)
    print(report)
    assert predicted.keys() == measured.keys(), report
    for name, seconds in measured.items():
        assert abs(predicted[name] - seconds) <= max(TOLERANCE * seconds, FLOOR_S), report
