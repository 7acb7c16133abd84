"""The whole tree on one machine: generate if needed, each level's pods in a process pool, the
final pod, verify, and a summary table. Pods run exactly the code the cluster's pods run."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import layout, ops, timeline
from .errors import DataError, UsageError
from .final import final
from .generate import generate
from .metrics import log
from .process import process
from .settings import Settings
from .verify import verify

DEFAULT_ROOT = "./data"
DEFAULT_FILES = 128
DEFAULT_ROWS = 100_000
DEFAULT_KEYS = 100_000


class Progress:
    """A one-line progress bar on stderr (a plain line per level when not a terminal)."""

    def __init__(self, label: str, total: int, width: int = 30):
        self.label, self.total, self.width = label, total, width
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int | None = None) -> None:
        total = total or self.total
        if not self.tty and done < total:
            return
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label:<10} [{bar}] {done}/{total} {elapsed:6.1f}s{end}")
        sys.stderr.flush()


def run(
    settings: Settings,
    *,
    files: int = DEFAULT_FILES,
    rows: int = DEFAULT_ROWS,
    keys: int = DEFAULT_KEYS,
    seed: int = 0,
    workers: int = 2,
    levels: int | None = None,
    final_fan_in: int | None = None,
    regenerate: bool = False,
) -> dict:
    """Generate the input if it is not there, run every level's pods in a process pool (each
    pod a fresh process), the final pod, then verify; the report `format_report` prints, with
    the run's timeline (workload/timeline.py) under "timeline"."""
    if workers < 1:
        raise UsageError(f"--workers must be an integer >= 1, got {workers}")
    op = ops.get(settings.op)
    store = settings.store()
    wanted = {"files": files, "rows": files * rows, "keys": keys, "seed": seed}
    manifest = store.read_json(layout.MANIFEST, missing=None)
    if regenerate or manifest is None or any(manifest.get(k) != v for k, v in wanted.items()):
        store.remove("l1")
        log(f"generating {files} files x {rows} rows under {store}")
        manifest = generate(
            store,
            files,
            rows,
            keys,
            seed=seed,
            row_group_rows=settings.row_group_rows,
            progress=Progress("generate", files),
        )
    # Levels above l1 and the result belong to this run: clear what an earlier shape left.
    for name in store.listdir(""):
        if name == layout.RESULT_DIR or layout.is_derived_level(name):
            store.remove(name)

    plan = layout.plan(manifest["files"], settings.fan_in, levels, final_fan_in)
    report = {"plan": plan.files, "levels": []}
    zero = time.time()  # the run's start
    times: list[tuple] = []  # (call, created, finished, record) a pod
    for level in range(1, plan.levels + 1):
        pods = plan.pods(level)
        started = time.perf_counter()
        calls = [(settings, i, level) for i in range(pods)]
        records = run_pods(process, calls, workers, Progress(f"level {level}", pods), times=times)
        report["levels"].append(_level_row(f"l{level}", records, time.perf_counter() - started))

    started = time.perf_counter()
    call = (settings, 0, plan.final_count)
    [record] = run_pods(final, [call], 1, kwargs={"level": plan.final_level}, times=times)
    report["levels"].append(_level_row("final", [record], time.perf_counter() - started))
    report["timeline"] = _timeline(plan, settings.fan_in, times, zero, time.time())
    report["result"] = store.read_json(layout.SUMMARY)
    report["verified"] = None  # not checked: the op's result is not the manifest's
    if op.checks_manifest:
        problems = verify(store)
        if problems:
            raise DataError("verification failed: " + "; ".join(problems))
        report["verified"] = True
    return report


def run_pods(
    fn, calls: list[tuple], workers: int, progress=None, *, kwargs=None, times=None
) -> list:
    """fn(*call, **kwargs) for every call, each in a fresh process (as on the cluster: its peak
    RSS is its own), `workers` at a time; their results in the order they finish. `times`, a
    list, gets (call, created, finished, result) for each: unix times, measured here, from
    before the process is started to its result's arrival.

    Each pod is one process forked from a forkserver that has imported the pods' modules, and
    hands its result back through a pipe. A ProcessPoolExecutor with max_tasks_per_child=1,
    replacing each worker after its one task, cost about 50 ms a pod (97 pods on tiny inputs,
    2 workers: 4.7 s); this, about 22 ms (2.2 s, against 0.6 s for a plain pool reusing its
    processes; forking from the forkserver is 11 ms of it)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    lock = threading.Lock()
    results: list = []

    def one(call: tuple):
        created = time.time()
        receive, send = ctx.Pipe(duplex=False)
        pod = ctx.Process(target=_pod, args=(send, fn, call, kwargs or {}), daemon=True)
        pod.start()
        send.close()
        try:
            ok, value = receive.recv()
            finished = time.time()
        except EOFError:  # the process died without a word (killed, or os._exit)
            pod.join()
            raise RuntimeError(f"pod {call[1:]} exited {pod.exitcode} without a result") from None
        finally:
            receive.close()
        pod.join()
        if not ok:
            raise value
        with lock:
            results.append(value)
            if times is not None:
                times.append((call, created, finished, value))
            if progress is not None:
                progress(len(results))

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(one, call) for call in calls]:
            future.result()  # the first failure, in submission order
    return results


# What every pod imports, imported once in the forkserver rather than in each pod.
PRELOAD = ("workload.process", "workload.final", "workload.run_local", "workload.storage.local")


def _pod(send, fn, call: tuple, kwargs: dict) -> None:
    """A pod process: its result, or its exception, down the pipe."""
    try:
        result = (True, fn(*call, **kwargs))
    except BaseException as exc:
        result = (False, exc)
    try:
        send.send(result)
    except Exception:  # an exception that does not pickle: its text
        send.send((False, RuntimeError(repr(result[1]))))
    send.close()


def _timeline(plan: layout.Plan, fan_in: int, times: list, zero: float, end: float) -> dict:
    """The run's timeline document: each pod's times from the parent, with its metrics line."""
    pods = [
        timeline.pod(record["level"], call[1], 0, "local", created, done, True, record, zero)
        for call, created, done, record in times
    ]
    pods.sort(key=lambda p: (p["created"], p["level"], p["index"]))
    names = {level: f"l{level}" for level in range(1, plan.levels + 1)}
    names[plan.final_level] = "final"
    return timeline.document(
        "local", pods, names, form="steps", ok=True, fan_in=fan_in, makespan_s=end - zero
    )


def _level_row(name: str, records: list[dict], seconds: float) -> dict:
    rows = sum(r["rows_in"] for r in records)
    read = sum(r["bytes_in"] for r in records)
    return {
        "level": name,
        "pods": len(records),
        "rows": rows,
        "seconds": round(seconds, 2),
        "mb_per_s": round(read / 2**20 / seconds, 1) if seconds else 0.0,
        "max_pod_rss_mb": max(r["peak_rss_mb"] for r in records),
    }


def format_report(report: dict) -> str:
    lines = [f"tree: {' -> '.join(map(str, report['plan']))} -> result"]
    head = f"{'level':<7}{'pods':>6}{'rows':>14}{'seconds':>10}{'MB/s':>9}{'max RSS MB':>12}"
    lines += [head, "-" * len(head)]
    for r in report["levels"]:
        lines.append(
            f"{r['level']:<7}{r['pods']:>6}{r['rows']:>14,}{r['seconds']:>10.2f}"
            f"{r['mb_per_s']:>9.1f}{r['max_pod_rss_mb']:>12.1f}"
        )
    res = report["result"]
    if "value_sum" in res:
        lines.append(
            f"result: rows={res['rows']:,} distinct_keys={res['distinct_keys']:,} "
            f"value_sum={res['value_sum']} value_min={res['value_min']} "
            f"value_max={res['value_max']}"
        )
        lines.append(f"        ts {res['ts_min']} .. {res['ts_max']}  checksum={res['checksum']}")
    if report["verified"]:
        lines.append("verified: result matches the generator's manifest")
    else:
        lines.append(f"not verified: op {res.get('op')!r} has no check against the manifest")
    return "\n".join(lines)
