"""The parent: settings, data, scheduling, checks and results.csv.

For each case, `repeats` times, each engine runs once in a fresh process (benchmarks/child.py),
engines alternating within a repeat (A B C, A B C, ...) so that a slow spell of the machine hits
all of them alike. Before a case its inputs are read once to warm the page cache. After each
child its outputs are checked (checks.py) and compared with the other engines' of the same
repeat; a failed check is recorded in the CSV, stops that case, and makes the run exit 1 once
the results are written: numbers from engines that disagree mean nothing.

S3 (the s3 case, and the fan_in case's s3 variants): moto's server with
workload.testing.proxy.FaultProxy in front, without rules: the children get the proxy as
AWS_ENDPOINT_URL, so every request they make is counted there, at the server; setup and checks
talk to moto directly and are never counted.

The fan_in case: the merge pod at each fan-in k of data.FAN_INS (level-1 pod 0, l1/0..k-1), on
local disk ("local-k") and on S3 ("s3-k"), each row with the memory model's projection for that
very pod (`projected_mb`: workload.budget.project over its inputs' bytes and rows).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import checks, data, report
from .data import SCALES, Inputs, Scale, log
from .engines import CASES, ENGINES, Spec

PACKAGE_DIR = Path(__file__).resolve().parent
MEASURED = ["timestamp", "scale", "case", "engine", "variant", "cpus", "repeat", "inputs", "rows"]
MEASURED += ["rows_per_input", "bytes_in", "bytes_out", "seconds", "peak_rss_mb"]
MEASURED += ["projected_mb", "check"]  # projected_mb: fan_in, workload.budget.project's total
S3_COLUMNS = ["requests", "gets", "range_gets", "heads", "lists", "puts", "multipart_uploads"]
S3_COLUMNS += ["upload_parts", "bytes_served", "bytes_received", "input_gets"]
S3_COLUMNS += ["input_get_targets", "uploads_per_output_ok", "error_responses"]
# The s3 case's link (workload.testing.proxy.Link's defaults: OSS's internal network as issue
# 11 measured with) and the pod's transfers at its nominal pace; the limits the report uses are
# measured on the same link and server (engines/transfer.py): moto's own cost counts too.
S3_COLUMNS += ["link_first_byte_s", "link_mb_per_s", "download_limit_s", "upload_limit_s"]
LIBRARIES = ("workload", "pyarrow", "numpy", "duckdb", "polars")
ENVIRONMENT = [f"{name}_version" for name in LIBRARIES]
ENVIRONMENT += ["python_version", "cpu_model", "cores", "memory_gb"]
COLUMNS = MEASURED + S3_COLUMNS + ENVIRONMENT
BUCKET, S3_PREFIX = "bench", "pair"  # the s3 inputs: bench/pair/l1/{0,1}.parquet + manifest
# The cases on S3, and the prefix their inputs are uploaded under (once per case: the largest
# inputs of its S3 runs; bench/fan_in/l1/0..63.parquet at the default scale).
S3_PREFIXES = {"s3": S3_PREFIX, "fan_in": "fan_in"}
STORAGES = ("local", "s3")  # the fan_in case's variants: f"{storage}-{fan_in}"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-key", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
CREDENTIALS |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
WINDOW = 32 * 2**20  # workload's read window (Settings.read_window)


# -- settings --------------------------------------------------------------------------------
class SettingsError(ValueError):
    """A bad setting: the command line prints it as one line and exits 2."""


def load_settings(cls: type, prefix: str, **overrides: Any) -> Any:
    """Defaults < environment <PREFIX><FIELD> < overrides (None means "not given"), then
    check(): workload.settings.Settings.load's rule, for a dataclass with its own prefix."""
    values = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name.upper()
        value = overrides.get(f.name)
        value = os.environ.get(name) or None if value is None else value
        if isinstance(value, str) and str(f.type).startswith("tuple"):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, tuple) and str(f.type).startswith("tuple[int"):
            try:
                value = tuple(int(v, 10) if isinstance(v, str) else v for v in value)
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a list of ints") from None
        elif isinstance(value, str) and str(f.type).startswith("int"):
            try:
                value = int(value, 10)
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a valid int") from None
        if value is not None:
            values[f.name] = value
    settings = cls(**values)
    settings.check()
    return settings


@dataclass(frozen=True)
class BenchSettings:
    scale: str = "default"
    repeats: int = 5  # fresh processes per engine and case; medians need several
    # results.csv, results.md and the plots; "" is benchmarks/results, but DATA/smoke/results
    # for the smoke scale so that its numbers never land in the committed results.
    output: str = ""
    data: str = "./data/bench"  # generated inputs, cached under DATA/<scale>/<dataset>/
    engines: tuple[str, ...] = ()  # empty: all
    cases: tuple[str, ...] = ()  # empty: all of the scale's
    timeout: int = 3600  # seconds one child may take before its case is abandoned
    # CPUs each measurement may use (the child's affinity, and every engine's threads: DuckDB's
    # `threads`, POLARS_MAX_THREADS, Arrow's OMP_NUM_THREADS, ours from the affinity); a pod
    # in production gets 1 vCPU.
    cpus: tuple[int, ...] = (1, 2)

    @classmethod
    def load(cls, **overrides: Any) -> BenchSettings:
        return load_settings(cls, "BENCH_", **overrides)

    def check(self) -> None:
        if self.scale not in SCALES:
            raise SettingsError(f"unknown scale {self.scale!r}; one of {', '.join(SCALES)}")
        for name in ("repeats", "timeout"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1, got {getattr(self, name)}")
        usable = len(os.sched_getaffinity(0))
        for value in self.cpus:
            if not isinstance(value, int) or not 1 <= value <= usable:
                raise SettingsError(f"cpus {value!r} is not a CPU count from 1 to {usable}")
        scale_cases = SCALES[self.scale].cases
        for name in self.cases:
            if name not in scale_cases:
                raise SettingsError(
                    f"case {name!r} is not run at scale {self.scale!r} "
                    f"(its cases: {', '.join(scale_cases)})"
                )
        all_engines = {e for engines in ENGINES.values() for e in engines}
        for name in set(self.engines) - all_engines:
            raise SettingsError(
                f"unknown engine {name!r}; some of {', '.join(sorted(all_engines))}"
            )

    @property
    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output).absolute()
        smoke = self.scale == "smoke"
        return self.data_dir / "smoke" / "results" if smoke else PACKAGE_DIR / "results"

    @property
    def data_dir(self) -> Path:
        return Path(self.data).absolute()  # children run in folders of their own

    def selected_cases(self) -> list[str]:
        scale = SCALES[self.scale].cases
        return [c for c in CASES if c in scale and (not self.cases or c in self.cases)]

    def describe(self) -> str:
        shown = {**asdict(self), "output": str(self.output_dir), "cases": self.selected_cases()}
        return "bench settings " + json.dumps(shown, sort_keys=True)


# -- the runs --------------------------------------------------------------------------------
class CaseFailed(RuntimeError):
    """A child crashed or an answer check failed: the case stops, the run exits 1."""


@dataclass(frozen=True)
class Run:
    """One engine (and variant) on some inputs at some CPUs: one measurement per repeat."""

    engine: str
    inputs: Inputs
    variant: str = ""
    cpus: int = 0

    @property
    def name(self) -> str:
        size = str(self.inputs.dataset.rows) if self.variant else ""
        cpus = f"{self.cpus}cpu" if self.cpus else ""
        return "-".join(p for p in (self.engine, self.variant, size, cpus) if p)


def plan(case: str, scale: Scale, engines: list[str], cpus: int = 0) -> list[Run]:
    """The runs of one repeat, in order (rss: ours only, merge and aggregate on each size;
    fan_in: ours only, each fan-in on local disk, then each on S3)."""
    engines = [e for e in ENGINES[case] if not engines or e in engines]
    if case == "fan_in":
        return [
            Run(e, inputs, f"{storage}-{inputs.count}", cpus)
            for storage in STORAGES
            for inputs in scale.cases[case]
            for e in engines
        ]
    if case == "rss":
        ops = ("merge", "aggregate") if "ours" in engines else ()
        return [Run("ours", pair, op, cpus) for pair in scale.cases[case] for op in ops]
    return [Run(e, inputs, cpus=cpus) for inputs in scale.cases[case] for e in engines]


def rotated(runs: list[Run], repeat: int) -> list[Run]:
    """The runs in the order of one repeat: each repeat starts one engine later."""
    k = (repeat - 1) % len(runs) if runs else 0
    return runs[k:] + runs[:k]


class Bench:
    def __init__(self, settings: BenchSettings):
        self.settings = settings
        self.scale = SCALES[settings.scale]
        self.roots: dict[data.Dataset, Path] = {}
        self.rows: list[dict] = []
        self.failures: list[str] = []
        self.environment = environment()
        self._expected: dict[tuple[Inputs, str], Any] = {}
        self.proxy: Any = None  # the s3 case's counting FaultProxy, and a client of moto
        self.client: Any = None
        self.work_root = settings.data_dir / self.scale.name / "work"

    def run(self) -> int:
        cases = self.settings.selected_cases()
        self.roots = data.prepare(self.settings.data_dir, self.scale, cases)  # before timing
        for case, cpus in [(c, n) for c in cases for n in self.settings.cpus]:
            runs = plan(case, self.scale, list(self.settings.engines), cpus)
            if not runs:
                log(f"{case}: no engine selected, skipped")
                continue
            try:
                for run in runs:  # the answers wanted, then a warm page cache: before timing
                    self.expected(run.inputs, kind(case, run.variant, run.engine))
                data.warm(list(dict.fromkeys(p for r in runs for p in self.paths(r.inputs))))
                remote = [r.inputs for r in runs if on_s3(case, r)]
                with s3_server() if remote else contextlib.nullcontext((None, None)) as s3:
                    self.proxy, self.client = s3
                    if remote:  # the inputs of every S3 run: the most files any one reads
                        self.upload(max(remote, key=lambda i: i.count), S3_PREFIXES[case])
                    self.repeats(case, runs)
            except CaseFailed as exc:
                self.failures.append(str(exc))
                log(f"FAILED {exc}")
            finally:  # outputs were checked; at the default scale they are gigabytes
                shutil.rmtree(self.work_root / case, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.work_root.rmdir()  # now empty
        out = self.settings.output_dir
        write_csv(out / "results.csv", self.rows, {(self.scale.name, c) for c in cases})
        written = report.build(out)
        print("wrote " + ", ".join(str(p) for p in [out / "results.csv", *written]))
        for failure in self.failures:
            log(f"results NOT valid: {failure}")
        return 1 if self.failures else 0

    def repeats(self, case: str, runs: list[Run]) -> None:
        for repeat in range(1, self.settings.repeats + 1):
            measured = [(run, *self.measure(case, run, repeat)) for run in rotated(runs, repeat)]
            measured.sort(key=lambda m: m[0].engine != "ours")  # the reference answer first
            problems = {run.name: checked.problems for run, _, checked in measured}

            def same(run: Run) -> tuple:  # runs whose answers must agree
                return run.inputs, run.variant, kind(case, run.variant, run.engine)

            for group in dict.fromkeys(same(run) for run in runs):
                answers = {
                    run.name: checked.answer
                    for run, _, checked in measured
                    if same(run) == group and checked.answer is not None
                }
                for name, found in checks.disagreements(answers).items():
                    problems[name] += found
            for run, row, _ in measured:
                row["check"] = "; ".join(problems[run.name]) or "ok"
                self.rows.append(row)
                projected = (
                    f" (projected {row['projected_mb']:.0f})" if "projected_mb" in row else ""
                )
                log(
                    f"{case:<14} {repeat}/{self.settings.repeats} {run.name:<24} "
                    f"{row['seconds']:9.3f} s {row['peak_rss_mb']:8.1f} MB{projected}  "
                    f"{row['check']}"
                )
            bad = [f"{case}/{r.name}: {row['check']}" for r, row, _ in measured if problems[r.name]]
            if bad:
                raise CaseFailed("answers disagree or are wrong: " + " | ".join(bad))

    def measure(self, case: str, run: Run, repeat: int) -> tuple[dict, checks.Checked]:
        work = self.work_root / case / run.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # ours reads a tree root: one whose l1 is the cached inputs (a symlink, so nothing it
        # writes lands in the cache).
        (work / "l1").symlink_to((self.roots[run.inputs.dataset] / "l1").resolve())
        files, env, counts = self.paths(run.inputs), child_env(run.cpus), {}
        remote = on_s3(case, run)
        if remote:
            keys = s3_keys(run.inputs, S3_PREFIXES[case])
            inputs, root = [f"{BUCKET}/{k}" for k in keys], f"s3://{BUCKET}/{S3_PREFIXES[case]}"
            out = f"{BUCKET}/{run.name}"
            env |= {**CREDENTIALS, "AWS_ENDPOINT_URL": self.proxy.url}
            for prefix in (f"{S3_PREFIXES[case]}/l2/", f"{run.name}/"):
                listed = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
                for item in listed.get("Contents", []):
                    self.client.delete_object(Bucket=BUCKET, Key=item["Key"])
            self.proxy.reset_log()
        else:
            inputs, root, out = [str(p.resolve()) for p in files], str(work), str(work)
        spec = Spec(
            case,
            run.engine,
            inputs,
            root,
            out,
            variant=run.variant,
            dataset=asdict(run.inputs.dataset),
            final_fan_in=self.scale.job_final_fan_in if case == "job" else None,
            endpoint=self.proxy.url if remote else "",
            cpus=run.cpus,
        )
        record = run_child(spec, env, work, self.settings.timeout)
        if case == "fan_in":
            counts["projected_mb"] = projected_mb(files, object_store=remote)
        if remote:
            sizes = {k: p.stat().st_size for k, p in zip(keys, files, strict=True)}
            counts |= summarize(self.proxy.transfers, sizes, [s3_key(o) for o in record["outputs"]])
            counts |= link_limits(self.proxy.link, sizes, counts["bytes_received"])
        try:
            outputs = record["outputs"]
            sources = [self.fetch(o) for o in outputs] if remote else outputs
            size = len if remote else os.path.getsize
            bytes_out, checked = sum(map(size, sources)), self.check(case, run, sources)
        except Exception as exc:  # a missing or unreadable output is a failed check, not a crash
            bytes_out, checked = 0, checks.Checked([f"output unreadable: {exc!r}"])
        if case == "job" and run.engine == "ours" and not record.get("verified"):
            checked.problems.append("workload verify failed")
        row = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "scale": self.scale.name,
            "case": case,
            "engine": run.engine,
            "variant": run.variant,
            "cpus": run.cpus,
            "repeat": repeat,
            "inputs": run.inputs.count,
            "rows": run.inputs.rows,
            "rows_per_input": run.inputs.dataset.rows,
            "bytes_in": sum(p.stat().st_size for p in files),
            "bytes_out": bytes_out,
            "seconds": round(record["seconds"], 4),
            "peak_rss_mb": record["peak_rss_mb"],
        }
        return row | counts | self.environment, checked

    def check(self, case: str, run: Run, sources: list[Any]) -> checks.Checked:
        """The outputs against what the inputs must give (outside any timing)."""
        output = kind(case, run.variant, run.engine)
        expected = self.expected(run.inputs, output)
        if output == "nothing":
            return checks.Checked([])
        if output == "results":
            return checks.check_results(sources[0], sources[1], expected)
        if output == "partials":
            return checks.check_partials(sources[0], *expected)
        return checks.check_events(sources, expected, ENGINES[case][run.engine].sorts)

    def expected(self, inputs: Inputs, output: str) -> Any:
        """What the inputs must give: the oracle's results; the totals and checksum for events;
        both for partials."""
        if output == "nothing":
            return None
        if (inputs, output) not in self._expected:
            root, paths = self.roots[inputs.dataset], self.paths(inputs)
            if output == "results":
                value = checks.oracle(paths)
            elif inputs.count == inputs.dataset.files:  # the generator computed it already
                value = json.loads((root / "l1/_manifest.json").read_text())["expected"]
            else:
                value = checks.expected_totals(paths)
            if output == "partials":
                value = (value, checks.oracle(paths, partials=True))
            self._expected[inputs, output] = value
        return self._expected[inputs, output]

    def paths(self, inputs: Inputs) -> list[Path]:
        return data.paths(self.roots[inputs.dataset], inputs)

    # -- S3 ---------------------------------------------------------------------------------
    def upload(self, inputs: Inputs, prefix: str = S3_PREFIX) -> None:
        root = self.roots[inputs.dataset]
        for path, key in zip(self.paths(inputs), s3_keys(inputs, prefix), strict=True):
            self.client.upload_file(str(path), BUCKET, key)
        manifest = f"{prefix}/l1/_manifest.json"
        self.client.upload_file(str(root / "l1/_manifest.json"), BUCKET, manifest)

    def fetch(self, output: str) -> Any:
        import pyarrow as pa

        body = self.client.get_object(Bucket=BUCKET, Key=s3_key(output))["Body"].read()
        return pa.py_buffer(body)


EVENT_CASES = ("pod_merge", "pod_process", "s3", "fan_in")  # their engines write events


def kind(case: str, variant: str, engine: str = "") -> str:
    """What a case's engines write: events, partials or results (or nothing to check)."""
    if engine and not ENGINES[case][engine].writes:
        return "nothing"
    if case in EVENT_CASES or variant == "merge" or engine == "copy":
        return "events"
    return "partials" if case == "pod_aggregate" or variant == "aggregate" else "results"


def on_s3(case: str, run: Run) -> bool:
    """Whether a run reads and writes S3: every run of the s3 case, fan_in's "s3-k" variants."""
    return case == "s3" or (case == "fan_in" and run.variant.startswith("s3-"))


def projected_mb(files: list[Path], object_store: bool) -> float:
    """workload.budget.project's total for the merge pod reading `files` (level-1 pod 0 at
    fan-in len(files)) with the settings the child runs with (workload's defaults: the child's
    environment has no WORKLOAD_*): the events' decoded row width, the largest input's bytes
    and its rows."""
    import pyarrow.parquet as pq

    from workload import budget, ops
    from workload.settings import Settings

    largest = max(files, key=lambda p: p.stat().st_size)
    parts = budget.project(
        fan_in=len(files),
        row_bytes=budget.row_width(ops.get("merge").schema(1)),
        columns=len(ops.get("merge").schema(1)),
        file_bytes=largest.stat().st_size,
        file_rows=pq.read_metadata(largest).num_rows,
        object_store=object_store,
        settings=Settings(fan_in=len(files)),
    )
    return round(sum(parts.values()), 1)


def link_limits(link, inputs: dict[str, int], uploaded: int) -> dict:
    """A pod's transfers at the link's pace, each alone: its inputs downloaded in parallel (one
    connection each), its output uploaded on two (workload's parts in flight)."""
    return {
        "link_first_byte_s": link.first_byte_s,
        "link_mb_per_s": round(link.bytes_per_s / 1e6, 1),
        "download_limit_s": round(link.first_byte_s + max(inputs.values()) / link.bytes_per_s, 4),
        "upload_limit_s": round(link.first_byte_s + uploaded / (2 * link.bytes_per_s), 4),
    }


@contextlib.contextmanager
def s3_server():
    """(the counting proxy, shaping the link, and a boto3 client of moto itself) with the
    bucket made."""
    import boto3

    from workload.testing.proxy import FaultProxy, Link, moto_server

    with moto_server() as moto, FaultProxy(moto, link=Link()) as proxy:
        client = boto3.client(
            "s3",
            endpoint_url=moto,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        )
        client.create_bucket(Bucket=BUCKET)
        yield proxy, client


def s3_keys(inputs: Inputs, prefix: str = S3_PREFIX) -> list[str]:
    return [f"{prefix}/l1/{i}.parquet" for i in range(inputs.count)]


def s3_key(output: str) -> str:
    """ "s3://bench/a/b" or "bench/a/b" -> "a/b"."""
    return output.removeprefix("s3://").removeprefix(f"{BUCKET}/")


def summarize(transfers: list, inputs: dict[str, int], outputs: list[str]) -> dict:
    """One pod's requests as the server saw them: totals by kind, GETs per input against the
    target (2 + ceil(bytes / 32 MiB): the footer, one per read window, one more), uploads per
    output (exactly one PUT, or one multipart: POST ?uploads, PUT ?partNumber=..., POST
    ?uploadId=...)."""
    kinds: Counter[str] = Counter()
    per_key: Counter[tuple[str, str]] = Counter()
    for t in transfers:
        url = urlsplit(t.path)
        key = unquote(url.path).lstrip("/").partition("/")[2]
        params = parse_qs(url.query, keep_blank_values=True)
        if t.method == "GET":
            kind = "lists" if not key else "range_gets" if t.range else "whole_gets"
        elif t.method == "PUT":
            kind = "upload_parts" if "partNumber" in params else "puts"
        elif t.method == "POST" and "uploads" in params:
            kind = "multipart_uploads"
        elif t.method == "POST" and "uploadId" in params:
            kind = "completes"
        else:
            kind = t.method.lower() + "s"
        kinds[kind] += 1
        per_key[kind, key] += 1
    gets = [per_key["range_gets", k] + per_key["whole_gets", k] for k in inputs]
    uploads_ok = all(
        (per_key["puts", k], per_key["multipart_uploads", k]) in ((1, 0), (0, 1))
        and per_key["completes", k] == per_key["multipart_uploads", k]
        for k in outputs
    )
    return {
        "requests": len(transfers),
        "gets": kinds["range_gets"] + kinds["whole_gets"],
        **{k: kinds[k] for k in ("range_gets", "heads", "lists", "puts", "multipart_uploads")},
        "upload_parts": kinds["upload_parts"],
        "bytes_served": sum(t.bytes_out for t in transfers),
        "bytes_received": sum(t.bytes_in for t in transfers),
        "input_gets": ";".join(map(str, gets)),
        "input_get_targets": ";".join(str(2 + math.ceil(n / WINDOW)) for n in inputs.values()),
        "uploads_per_output_ok": "yes" if uploads_ok else "no",
        # 4xx/5xx answers; a 404 on a HEAD is a client probing whether an object exists.
        "error_responses": sum(1 for t in transfers if t.status >= 400),
    }


# -- children and files ----------------------------------------------------------------------
def child_env(cpus: int = 0) -> dict[str, str]:
    """The environment without what would change what a child does: workload's WORKLOAD_*
    settings, cloud credentials, the BENCH_* settings, thread counts; then the thread counts
    of `cpus` (Arrow reads OMP_NUM_THREADS, Polars POLARS_MAX_THREADS, before any work)."""
    prefixes = ("WORKLOAD_", "AWS_", "OSS_", "BENCH_", "OMP_", "POLARS_MAX_THREADS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    path = [str(PACKAGE_DIR.parent), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    if cpus:
        env |= {"OMP_NUM_THREADS": str(cpus), "POLARS_MAX_THREADS": str(cpus)}
    return env


def run_child(spec: Spec, env: dict, cwd: Path, timeout: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.child", json.dumps(asdict(spec))]
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

    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return {
        **{f"{name}_version": version(name) for name in LIBRARIES},
        "python_version": platform.python_version(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(kb / 2**20, 1),
    }


def main(settings: BenchSettings) -> int:
    log(settings.describe())
    started = time.perf_counter()
    code = Bench(settings).run()
    log(f"done in {time.perf_counter() - started:.1f} s")
    return code
