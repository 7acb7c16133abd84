"""The whole tree on one machine: generate if needed, each level's pods in a process pool, the
final pod, verify, and a summary table. Pods run exactly the code the cluster's pods run."""

from __future__ import annotations

import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from . import layout, ops
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
    pod a fresh process), the final pod, then verify; the report `format_report` prints."""
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
        derived_level = name.startswith("l") and name[1:].isdigit() and name != "l1"
        if name == layout.RESULT_DIR or derived_level:
            store.remove(name)

    plan = layout.plan(manifest["files"], settings.fan_in, levels, final_fan_in)
    report = {"plan": plan.files, "levels": []}
    for level in range(1, plan.levels + 1):
        pods = plan.pods(level)
        started = time.perf_counter()
        calls = [(settings, i, level) for i in range(pods)]
        records = run_pods(process, calls, workers, Progress(f"level {level}", pods))
        report["levels"].append(_level_row(f"l{level}", records, time.perf_counter() - started))

    started = time.perf_counter()
    call = (settings, 0, plan.final_count)
    [record] = run_pods(final, [call], 1, kwargs={"level": plan.final_level})
    report["levels"].append(_level_row("final", [record], time.perf_counter() - started))
    report["result"] = store.read_json(layout.SUMMARY)
    report["verified"] = None  # not checked: the op's result is not the manifest's
    if op.checks_manifest:
        problems = verify(store)
        if problems:
            raise DataError("verification failed: " + "; ".join(problems))
        report["verified"] = True
    return report


def run_pods(fn, calls: list[tuple], workers: int, progress=None, *, kwargs=None) -> list:
    """fn(*call, **kwargs) for every call, each in a fresh process (as on the cluster: its peak
    RSS is its own), `workers` at a time; their results in the order they finish."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["workload.process", "workload.final"])
    results = []
    with ProcessPoolExecutor(workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(fn, *call, **(kwargs or {})) for call in calls]
        for done, future in enumerate(as_completed(futures), 1):
            results.append(future.result())
            if progress is not None:
                progress(done)
    return results


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
