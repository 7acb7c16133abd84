"""The parent: data, scheduling, checks and results.csv.

For each case, `repeats` times, each engine runs once in a fresh process (benchmarks/case.py),
engines alternating within a repeat (A B C, A B C, ...) so that a slow spell of the machine hits
all of them alike. Before a case, its inputs are read once to warm the page cache, so the first
engine does not pay cold reads alone. After each child, its outputs are checked (checks.py) and
compared with the other engines' of the same repeat; a failed check is recorded in the CSV, stops
that case, and makes the run exit 1 once results are written: numbers from engines that disagree
mean nothing.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import checks, data, report
from .case import Spec
from .data import Inputs, Scale
from .settings import PACKAGE_DIR, BenchSettings

REPO = PACKAGE_DIR.parent
MEASURED = [
    "timestamp",
    "scale",
    "case",
    "engine",
    "variant",
    "repeat",
    "inputs",
    "rows",
    "rows_per_input",
    "bytes_in",
    "bytes_out",
    "seconds",
    "peak_rss_mb",
    "check",
]
# Counted at the S3 server for the s3 case (blank elsewhere); see s3.summarize.
S3_COLUMNS = [
    "requests",
    "gets",
    "range_gets",
    "heads",
    "lists",
    "puts",
    "multipart_uploads",
    "upload_parts",
    "bytes_served",
    "bytes_received",
    "input_gets",
    "input_get_targets",
    "uploads_per_output_ok",
    "error_responses",
]
ENVIRONMENT = [
    "workload_version",
    "pyarrow_version",
    "numpy_version",
    "duckdb_version",
    "polars_version",
    "python_version",
    "cpu_model",
    "cores",
    "memory_gb",
]
COLUMNS = MEASURED + S3_COLUMNS + ENVIRONMENT
S3_INPUT_PREFIX = "pair"  # the pair's objects: pair/l1/{0,1}.parquet and its manifest


class CaseFailed(RuntimeError):
    """A child crashed or an answer check failed: the case stops, the run exits 1."""


@dataclass(frozen=True)
class Run:
    """One engine (and variant) on some inputs: one measurement per repeat."""

    engine: str
    inputs: Inputs
    variant: str = ""

    @property
    def name(self) -> str:
        parts = [self.engine, self.variant, str(self.inputs.dataset.rows) if self.variant else ""]
        return "-".join(p for p in parts if p)

    @property
    def group(self) -> tuple:
        """Runs of one group must give the same answer."""
        return self.inputs, self.variant


def plan(case: str, scale: Scale, engines: list[str]) -> list[Run]:
    """The runs of one repeat, in order."""
    if case == "rss":  # ours only: merge and aggregate alternating, on each size
        if "ours" not in engines:
            return []
        return [Run("ours", pair, op) for pair in scale.rss for op in ("merge", "aggregate")]
    inputs = {"pod_merge": scale.pair, "pod_aggregate": scale.pair, "final": scale.final}
    inputs |= {"job": scale.job, "s3": scale.s3}
    return [Run(engine, inputs[case]) for engine in engines]


class Bench:
    def __init__(self, settings: BenchSettings):
        self.settings = settings
        self.scale = data.SCALES[settings.scale]
        self.roots: dict[data.Dataset, Path] = {}
        self.rows: list[dict] = []
        self.failures: list[str] = []
        self.environment = environment()
        self._expected: dict[Inputs, dict] = {}
        self.s3: Any = None  # the S3Server while the s3 case runs

    # -- the whole run ----------------------------------------------------------------------
    def run(self) -> int:
        cases = self.settings.selected_cases()
        # Generation happens here, before and outside any timing.
        self.roots = data.prepare(self.settings.data_dir, self.scale, cases)
        for case in cases:
            runs = plan(case, self.scale, self.settings.engines_for(case))
            if not runs:
                log(f"{case}: no engine selected, skipped")
                continue
            try:
                self.run_case(case, runs)
            except CaseFailed as exc:
                self.failures.append(str(exc))
                log(f"FAILED {exc}")
            finally:  # outputs were checked; at the default scale they are gigabytes
                shutil.rmtree(self.work_dir(case), ignore_errors=True)
        with contextlib.suppress(OSError):
            self.work_root.rmdir()  # now empty
        out = self.settings.output_dir
        write_csv(out / "results.csv", self.rows, {(self.scale.name, c) for c in cases})
        written = report.build(out)
        print("wrote " + ", ".join(str(p) for p in [out / "results.csv", *written]))
        if self.failures:
            log(f"{len(self.failures)} failure(s); results above are NOT valid:")
            for failure in self.failures:
                log(f"  {failure}")
            return 1
        return 0

    def run_case(self, case: str, runs: list[Run]) -> None:
        inputs = list(dict.fromkeys(r.inputs for r in runs))
        for i in inputs:
            data.warm(self.input_paths(i))
        if case == "s3":
            from .s3 import S3Server

            with S3Server() as self.s3:
                self._upload(runs[0].inputs)
                self._repeats(case, runs)
            self.s3 = None
        else:
            self._repeats(case, runs)

    def _repeats(self, case: str, runs: list[Run]) -> None:
        for repeat in range(1, self.settings.repeats + 1):
            measured = [(run, *self.measure(case, run, repeat)) for run in runs]
            problems = {run.name: checked.problems for run, _, checked in measured}
            # Across the engines of this repeat: each answer against the first engine's (ours).
            for group in dict.fromkeys(run.group for run in runs):
                answers = {
                    run.name: checked.answer
                    for run, _, checked in measured
                    if run.group == group and checked.answer is not None
                }
                for name, found in checks.disagreements(answers).items():
                    problems[name] += found
            for run, row, _ in measured:
                row["check"] = "; ".join(problems[run.name]) or "ok"
                self.rows.append(row)
                log(_progress(case, repeat, self.settings.repeats, run, row))
            bad = [
                f"{case}/{run.name}: {row['check']}"
                for run, row, _ in measured
                if problems[run.name]
            ]
            if bad:
                raise CaseFailed("answers disagree or are wrong: " + " | ".join(bad))

    # -- one measurement --------------------------------------------------------------------
    def measure(self, case: str, run: Run, repeat: int) -> tuple[dict, checks.Checked]:
        work = self.work_dir(case) / run.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # ours reads a tree root: give it one whose l1 is the cached inputs (a symlink, so
        # nothing it writes lands in the cache).
        (work / "l1").symlink_to((self.roots[run.inputs.dataset] / "l1").resolve())
        spec = self.spec(case, run, work)
        env = child_env()
        if case == "s3":
            env |= self.s3.env()
            for prefix in (f"{S3_INPUT_PREFIX}/l2/", f"{run.name}/"):
                self.s3.delete_prefix(prefix)
            self.s3.reset()
        record = run_child(spec, env, work, self.settings.timeout)
        row = self.row(case, run, repeat, record)
        if case == "s3":
            row |= self._count(run, record["outputs"])
        checked = self.check(case, run, record)
        return row, checked

    def spec(self, case: str, run: Run, work: Path) -> Spec:
        d = run.inputs.dataset
        paths = [str(p.resolve()) for p in self.input_paths(run.inputs)]
        if case == "s3":
            keys = self._s3_keys(run.inputs)
            from .s3 import BUCKET

            return Spec(
                case,
                run.engine,
                inputs=[f"{BUCKET}/{k}" for k in keys],
                root=f"s3://{BUCKET}/{S3_INPUT_PREFIX}",
                out=f"{BUCKET}/{run.name}",
                endpoint=self.s3.endpoint,
            )
        return Spec(
            case,
            run.engine,
            inputs=paths,
            root=str(work),
            out=str(work),
            variant=run.variant,
            dataset={"files": d.files, "rows": d.rows, "keys": d.keys, "seed": d.seed},
            final_fan_in=self.scale.job_final_fan_in if case == "job" else None,
        )

    def row(self, case: str, run: Run, repeat: int, record: dict) -> dict:
        paths = self.input_paths(run.inputs)
        size = (lambda o: self.s3.size(_s3_key(o))) if case == "s3" else os.path.getsize
        out_bytes = 0
        for output in record["outputs"]:
            with contextlib.suppress(Exception):  # a missing output fails its check instead
                out_bytes += size(output)
        return {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "scale": self.scale.name,
            "case": case,
            "engine": run.engine,
            "variant": run.variant,
            "repeat": repeat,
            "inputs": run.inputs.count,
            "rows": run.inputs.rows,
            "rows_per_input": run.inputs.dataset.rows,
            "bytes_in": sum(p.stat().st_size for p in paths),
            "bytes_out": out_bytes,
            "seconds": round(record["seconds"], 4),
            "peak_rss_mb": record["peak_rss_mb"],
            **self.environment,
        }

    def check(self, case: str, run: Run, record: dict) -> checks.Checked:
        """The outputs against the inputs' expected totals (outside any timing)."""
        expected = self.expected(run.inputs)
        kind = {"pod_merge": "events", "s3": "events", "pod_aggregate": "partials"}.get(case)
        kind = kind or {"merge": "events", "aggregate": "partials"}.get(run.variant, "results")
        try:
            outputs: list[Any] = record["outputs"]
            if case == "s3":
                import pyarrow as pa

                outputs = [pa.py_buffer(self.s3.read(_s3_key(o))) for o in outputs]
            checked = self._check(kind, run, outputs, expected)
        except Exception as exc:  # a missing or unreadable output is a failed check, not a crash
            checked = checks.Checked([f"output unreadable: {type(exc).__name__}: {exc}"])
        if case == "job" and run.engine == "ours" and not record.get("verified"):
            checked.problems.append("workload verify failed")
        return checked

    @staticmethod
    def _check(kind: str, run: Run, outputs: list[Any], expected: dict) -> checks.Checked:
        if kind == "events":
            # The copy limit and the plain S3 reader concatenate: rows all there, not sorted.
            concatenation = run.engine in ("copy", "s3fs_read_table")
            checked = checks.check_events(outputs, expected, must_be_sorted=not concatenation)
        elif kind == "partials":
            checked = checks.check_partials(outputs[0], expected)
        else:
            checked = checks.check_results(outputs[0], outputs[1], expected)
        return checked

    def expected(self, inputs: Inputs) -> dict:
        if inputs not in self._expected:
            root = self.roots[inputs.dataset]
            if inputs.count == inputs.dataset.files:  # the generator computed it already
                manifest = json.loads((root / "l1/_manifest.json").read_text())
                self._expected[inputs] = manifest["expected"]
            else:
                paths = self.input_paths(inputs)
                self._expected[inputs] = checks.expected_totals(paths, inputs.dataset.keys)
        return self._expected[inputs]

    # -- S3 ---------------------------------------------------------------------------------
    def _s3_keys(self, inputs: Inputs) -> list[str]:
        return [f"{S3_INPUT_PREFIX}/l1/{i}.parquet" for i in range(inputs.count)]

    def _upload(self, inputs: Inputs) -> None:
        root = self.roots[inputs.dataset]
        for path, key in zip(self.input_paths(inputs), self._s3_keys(inputs), strict=True):
            self.s3.upload(path, key)
        self.s3.upload(root / "l1/_manifest.json", f"{S3_INPUT_PREFIX}/l1/_manifest.json")

    def _count(self, run: Run, outputs: list[str]) -> dict:
        from .s3 import summarize

        sizes = {
            k: p.stat().st_size
            for k, p in zip(self._s3_keys(run.inputs), self.input_paths(run.inputs), strict=True)
        }
        return summarize(self.s3.requests(), sizes, [_s3_key(o) for o in outputs])

    # -- paths ------------------------------------------------------------------------------
    def input_paths(self, inputs: Inputs) -> list[Path]:
        return inputs.dataset.paths(self.roots[inputs.dataset], inputs.count)

    @property
    def work_root(self) -> Path:
        """Where children write their outputs, one folder per case and run."""
        return self.settings.data_dir / self.scale.name / "work"

    def work_dir(self, case: str) -> Path:
        return self.work_root / case


def _s3_key(output: str) -> str:
    """ "s3://bench/a/b" or "bench/a/b" -> "a/b"."""
    from .s3 import BUCKET

    return output.removeprefix("s3://").removeprefix(f"{BUCKET}/")


def child_env() -> dict[str, str]:
    """The environment without anything that would change what a child does: workload's own
    WORKLOAD_* settings, cloud credentials, our BENCH_* settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WORKLOAD_", "AWS_", "OSS_", "BENCH_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_child(spec: Spec, env: dict, cwd: Path, timeout: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.case", json.dumps(asdict(spec))]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise CaseFailed(f"{spec.case}/{spec.engine} took over {timeout} s") from None
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise CaseFailed(f"{spec.case}/{spec.engine} exited {result.returncode}:\n{tail}")
    return json.loads(lines[-1])


def write_csv(path: Path, new_rows: list[dict], replaced: set[tuple[str, str]]) -> None:
    """One row per measurement. Rows of the (scale, case) pairs measured now replace earlier
    ones; others stay, so default and large results can live in one file."""
    kept: list[dict] = []
    if path.exists():
        with open(path, newline="") as f:
            kept = [r for r in csv.DictReader(f) if (r["scale"], r["case"]) not in replaced]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept + new_rows)
    os.replace(tmp, path)


def environment() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return ""

    cpu = ""
    with open("/proc/cpuinfo") as f:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
        )
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return {
        **{f"{name}_version": version(name) for name in ("workload", "pyarrow", "numpy")},
        **{f"{name}_version": version(name) for name in ("duckdb", "polars")},
        "python_version": platform.python_version(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(kb / 2**20, 1),
    }


def _progress(case: str, repeat: int, repeats: int, run: Run, row: dict) -> str:
    return (
        f"{case:<14} {repeat}/{repeats} {run.name:<24} {row['seconds']:9.3f} s "
        f"{row['peak_rss_mb']:8.1f} MB  {row['check']}"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(settings: BenchSettings) -> int:
    log(settings.describe())
    started = time.perf_counter()
    code = Bench(settings).run()
    log(f"done in {time.perf_counter() - started:.1f} s")
    return code
