"""`workload plan`: the shape of a run before it starts, and what it will cost.

For N input files of B bytes it tries each fan-in and keeps the plans that fit every limit:
- memory: each pod's projected peak (budget.project) within the pod's memory, with headroom;
- Argo: the finished Workflow's size by the node model (argo/status.py) within
  MAX_WORKFLOW_SIZE, without node status offload (a DAG past the CRD's 200 tasks runs chunks
  of pods per task: layout.dag_chunk);
- storage: requests per second per prefix within the store's limits (every level's files share
  one prefix, l{L}/, and their names are sequential). Pods that read many inputs at once
  from an object store stream each column in small windows within their read budget, in more
  requests (storage.readahead); where that breaks a rate, a bigger budget (READ_BUDGETS) that
  the pods' memory allows reads in fewer.
Of those it picks the shortest predicted makespan (then the fewest bytes moved), and prints
per level the files, pods, projected memory, requests per second, bytes and time. A plan that
breaks a limit is refused with one line naming the limit (ConfigError, exit 78).

The makespan is an estimate by level (pods in waves of `parallelism`, no faster than the
controller creates them, each pod its start plus its work at the measured rates below); the
constants are named and sourced, and each can be overridden.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from . import budget, layout, ops
from .argo import status
from .errors import ConfigError
from .settings import Settings
from .storage.readahead import READ_AHEAD_BUDGET

FAN_INS = (2, 4, 8, 16, 32, 64)
READ_BUDGETS = tuple(READ_AHEAD_BUDGET << i for i in range(4))  # 64 MiB .. 512 MiB, tried in turn
MEMORY_HEADROOM = 0.85  # of the pod's memory limit: the projection is within ~15% of measured
EVENT_BYTES_PER_ROW = 9.0  # the generated events in Parquet (18.0 MB for 2M rows)
# The rendered spec, a little above what argo/build.py renders (steps 5-9 KB; dag about 62 KB at
# 200 tasks of 32 dependencies, 76 KB at 198 tasks of 16): render checks the real one.
SPEC_BYTES = {"steps": 10_000, "dag": 10_000}
DAG_TASK_BYTES = 360  # a DAG task's name, template, arguments and dependencies


@dataclass(frozen=True)
class Storage:
    object_store: bool
    get_per_s: float | None  # per prefix; None: no limit modelled
    put_per_s: float | None
    link_mb_per_s: float  # one connection's bandwidth


# OSS: 10,000 requests/s per bucket, about 2,000 when key names are sequential (ours are
# l{L}/{i}); OSS "Performance guidelines" (Alibaba Cloud docs, "OSS performance and
# scalability best practice"). S3: 5,500 GET/HEAD and 3,500 PUT/POST/DELETE per second per
# prefix ("Best practices design patterns: optimizing Amazon S3 performance"). Link: OSS's
# internal network as workload.testing.proxy.Link models it (80 MB/s per connection).
STORAGE = {
    "local": Storage(False, None, None, 500.0),
    "nas": Storage(False, None, None, 150.0),
    "oss": Storage(True, 2_000.0, 2_000.0, 80.0),
    "s3": Storage(True, 5_500.0, 3_500.0, 80.0),
}


@dataclass(frozen=True)
class Rates:
    """The makespan model's constants (override any with dataclasses.replace)."""

    # Argo's controller at its defaults creates about 4.5 pods/s (one-pod workflows; 13-35/s
    # tuned: --qps, --burst, --workflow-workers), issue 9's measurement.
    pods_created_per_s: float = 4.5
    pod_start_s: float = 5.0  # scheduled to running, image cached
    cold_pull_s: float = 50.0  # a cold 386 MB image pull, once per node, first wave only
    pod_fixed_s: float = 0.44  # a pod process on tiny inputs (benchmarks, pod_process)
    merge_rows_per_s: float = 4.6e6  # merge pod at 1 CPU: 2 x 1M rows in 0.43 s
    final_rows_per_s: float = 7.9e6  # final pod at 1 CPU: 32M rows in 4.06 s
    two_cpu_speedup: float = 1.3  # merge pod at 2 CPUs: 0.33 s vs 0.43 s at 1


@dataclass(frozen=True)
class Request:
    files: int
    file_bytes: int
    file_rows: int | None = None  # None: from the bytes, as generated events
    storage: str = "oss"
    pod_memory_mb: float = 2048.0
    pod_cpu: float = 1.0
    parallelism: int = 64
    fan_in: int | None = None  # None: the planner chooses
    final_fan_in: int = layout.DEFAULT_FINAL_FAN_IN
    form: str = "auto"  # auto | steps | dag
    op: str = "merge"
    rates: Rates = field(default_factory=Rates)

    @property
    def rows(self) -> int:
        return self.file_rows or max(1, round(self.file_bytes / EVENT_BYTES_PER_ROW))


@dataclass
class Level:
    level: int  # 1.. for process levels; the final pod's level last
    files: int  # files it reads
    pods: int
    fan_in: int
    memory_mb: float
    gets_per_s: float
    puts_per_s: float
    bytes_in: int
    seconds: float
    final: bool = False


@dataclass
class Plan:
    request: Request
    fan_in: int
    form: str
    levels: list[Level]
    size: status.Size
    problems: list[str]  # the limits it breaks, one line each; empty when it fits
    metrics_output: bool = True  # level pods' metrics as output parameters (else logs only)
    read_budget: int = READ_AHEAD_BUDGET  # the pods' read_budget setting

    @property
    def pods(self) -> int:
        return sum(level.pods for level in self.levels)

    @property
    def makespan_s(self) -> float:
        return sum(level.seconds for level in self.levels)

    @property
    def bytes_moved(self) -> int:
        """Every level's files read once and (but the final pod's) written once."""
        return sum(lv.bytes_in * (1 if lv.final else 2) for lv in self.levels)


def _form(request: Request, pods: int) -> str:
    """auto: the dag form while every pod is a task of its own (it waits for exactly its
    producers), else the steps form."""
    if request.form != "auto":
        return request.form
    return "dag" if pods <= layout.MAX_DAG_TASKS else "steps"


def evaluate(request: Request, fan_in: int, *, read_budget: int = READ_AHEAD_BUDGET) -> Plan:
    """The plan with this fan-in and pods' read budget (the read_budget setting), with the
    limits it breaks."""
    storage = STORAGE[request.storage]
    rates, op = request.rates, ops.get(request.op)
    settings = Settings(read_budget=read_budget)
    shape = layout.plan(request.files, fan_in, final_fan_in=request.final_fan_in)
    pods_in_all = sum(shape.pods(level) for level in range(1, shape.levels + 1)) + 1
    form = _form(request, pods_in_all)
    rows, size = request.rows, request.file_bytes
    levels: list[Level] = []
    for number, files in enumerate(shape.files, 1):
        final = number == len(shape.files)
        k = files if final else fan_in
        pods = 1 if final else shape.pods(number)
        schema = op.schema(number)
        memory = budget.project(
            fan_in=k,
            row_bytes=budget.row_width(schema),
            columns=len(schema),
            file_bytes=size,
            file_rows=rows,
            object_store=storage.object_store,
            settings=settings,
            final=final,
            threads=max(1, math.floor(request.pod_cpu)),
        )
        pod_rows = k * rows  # the last pod of a level may read fewer
        rate = rates.final_rows_per_s if final else rates.merge_rows_per_s
        work = pod_rows / (rate * (rates.two_cpu_speedup if request.pod_cpu >= 2 else 1.0))
        link = storage.link_mb_per_s * 1e6
        transfer = max(k * size / (link * min(k, 8)), k * size / (2 * link))  # in, out
        pod_s = rates.pod_fixed_s + max(work, transfer)  # the transfers overlap the work
        waves = math.ceil(pods / request.parallelism)
        seconds = max(waves * (rates.pod_start_s + pod_s), pods / rates.pods_created_per_s)
        # Requests are made while pods work: in waves of `parallelism`, not while images pull
        busy = min(seconds, max(waves * pod_s, pods / rates.pods_created_per_s))
        seconds += rates.cold_pull_s if number == 1 else 0.0
        reads = budget.input_reads(
            fan_in=k, columns=len(schema), file_bytes=size, file_rows=rows, settings=settings
        )
        gets = pods * (1 + k * reads.gets)  # the manifest, then each input's requests
        puts = pods * (math.ceil(k * size / (5 * 2**20)) + 2)
        level_bytes = files * size
        levels.append(
            Level(
                level=number,
                files=files,
                pods=pods,
                fan_in=k,
                memory_mb=sum(memory.values()),
                gets_per_s=gets / busy,
                puts_per_s=puts / busy,
                bytes_in=level_bytes,
                seconds=seconds,
                final=final,
            )
        )
        # The next level's files: the merge op rewrites every row (an op that shrinks its
        # data, like aggregate's partials, moves less than this).
        size, rows = level_bytes // pods, files * rows // pods
    tasks = layout.dag_tasks(shape)
    spec = SPEC_BYTES[form] + (DAG_TASK_BYTES * tasks if form == "dag" else 0)
    shape_pods = [lv.pods for lv in levels]
    chunk = layout.dag_chunk(shape) if form == "dag" else 1
    outputs = True  # the level pods' metrics as output parameters, unless the status is full

    def model(outputs: bool) -> status.Size:
        return status.size(
            shape_pods, fan_in=fan_in, form=form, spec_bytes=spec, outputs=outputs, chunk=chunk
        )

    modelled = model(outputs)
    if not modelled.fits:
        outputs = False
        modelled = model(outputs)
    plan = Plan(
        request, fan_in, form, levels, modelled, [], metrics_output=outputs, read_budget=read_budget
    )
    plan.problems = _problems(plan, storage)
    return plan


def _problems(plan: Plan, storage: Storage) -> list[str]:
    request, out = plan.request, []
    allowed = request.pod_memory_mb * MEMORY_HEADROOM
    for lv in plan.levels:
        what = "the final pod" if lv.final else f"a level-{lv.level} pod"
        if lv.memory_mb > allowed:
            out.append(
                f"memory: {what} at fan-in {lv.fan_in} is projected at {lv.memory_mb:.0f} MB, "
                f"over {MEMORY_HEADROOM:.0%} of the pod's {request.pod_memory_mb:.0f} MB"
            )
        for kind, rate, limit in (
            ("GET", lv.gets_per_s, storage.get_per_s),
            ("PUT", lv.puts_per_s, storage.put_per_s),
        ):
            if limit is not None and rate > limit:
                out.append(
                    f"request rate: level {lv.level} would make {rate:.0f} {kind}/s under one "
                    f"prefix, over {request.storage}'s {limit:.0f}/s"
                )
    if not plan.size.fits:
        out.append(
            f"workflow size: {plan.size.total_bytes / 2**10:,.0f} KiB with {plan.size.nodes} "
            f"nodes compressed, over Argo's MAX_WORKFLOW_SIZE of 1,024 KiB (no status offload)"
        )
    return out


def choose(request: Request) -> Plan:
    """The fitting plan with the shortest makespan (then the fewest bytes moved); ConfigError
    naming the limit when none fits."""
    if request.storage not in STORAGE:
        raise ConfigError(f"--storage {request.storage!r}: expected one of {', '.join(STORAGE)}")
    if request.form not in ("auto", "steps", "dag"):
        raise ConfigError(f"--form {request.form!r}: expected auto, steps or dag")
    for name in ("files", "file_bytes", "parallelism"):
        layout.check_positive(name.replace("_", "-"), getattr(request, name), minimum=1)
    fan_ins = (request.fan_in,) if request.fan_in else FAN_INS
    plans, fitting = [], []
    for k in fan_ins:
        tried = [evaluate(request, k, read_budget=b) for b in READ_BUDGETS]
        plans.append(tried[0])
        fitting += [p for p in tried if not p.problems][:1]  # the smallest budget that fits
    if fitting:
        return min(fitting, key=lambda p: (p.makespan_s, p.bytes_moved))
    closest = min(plans, key=lambda p: (len(p.problems), p.makespan_s))
    raise ConfigError(f"no plan fits at fan-in {closest.fan_in}: {closest.problems[0]}")


def describe(plan: Plan) -> str:
    r = plan.request
    head = (
        f"plan: {r.files:,} files of {r.file_bytes / 1e6:.1f} MB on {r.storage}, pods of "
        f"{r.pod_cpu:g} CPU and {r.pod_memory_mb:.0f} MB, parallelism {r.parallelism}\n"
        f"fan-in {plan.fan_in}, {len(plan.levels) - 1} process levels, {plan.form} form, "
        f"{plan.pods:,} pods, {plan.size.nodes:,} nodes, workflow "
        f"{plan.size.total_bytes / 2**10:,.0f} KiB of {status.MAX_WORKFLOW_SIZE >> 10:,} KiB"
        f"{'' if plan.metrics_output else ' (level pods metrics in logs only)'}\n"
    )
    store = STORAGE[r.storage].object_store
    if store:
        head += f"read budget {plan.read_budget >> 20} MiB per pod (WORKLOAD_READ_BUDGET)\n"
    rows = [("level", "files", "pods", "MB/pod", "GET/s", "PUT/s", "GB read", "est. s")]
    for lv in plan.levels:
        rows.append(
            (
                "final" if lv.final else f"l{lv.level}",
                f"{lv.files:,}",
                f"{lv.pods:,}",
                f"{lv.memory_mb:.0f}",
                f"{lv.gets_per_s:,.0f}" if store else "-",
                f"{lv.puts_per_s:,.0f}" if store else "-",
                f"{lv.bytes_in / 1e9:,.1f}",
                f"{lv.seconds:,.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    tail = f"makespan about {plan.makespan_s / 60:,.1f} min; {_bytes(plan.bytes_moved)} moved"
    return head + "\n".join(lines) + "\n" + tail


def _bytes(n: float) -> str:
    return f"{n / 1e12:,.2f} TB" if n >= 1e12 else f"{n / 1e9:,.1f} GB"


def read_plan(path) -> dict:
    """What a plan file (`workload plan --json > plan.json`) fixes for a render: files, fan_in,
    final_fan_in, parallelism, op, pod_cpu (as written, "1"), pod_memory_mb, metrics_output,
    read_budget and file_bytes, each of its type. ConfigError naming the file and what is wrong."""
    import json
    from pathlib import Path

    def count(value, name: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} is not an integer")
        return value

    try:
        plan = json.loads(Path(path).read_text())
        request = plan["request"]
        if not isinstance(plan["metrics_output"], bool):
            raise ValueError("metrics_output is not true or false")
        return {
            "files": count(request["files"], "files"),
            "fan_in": count(plan["fan_in"], "fan_in"),
            "final_fan_in": count(request["final_fan_in"], "final_fan_in"),
            "parallelism": count(request["parallelism"], "parallelism"),
            "op": str(request["op"]),
            "pod_cpu": f"{float(request['pod_cpu']):g}",
            "pod_memory_mb": int(request["pod_memory_mb"]),
            "metrics_output": plan["metrics_output"],
            "read_budget": count(plan["read_budget"], "read_budget"),
            "file_bytes": count(request["file_bytes"], "file_bytes"),
        }
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        what = f"{type(exc).__name__}: {exc}" if isinstance(exc, ValueError) else type(exc).__name__
        raise ConfigError(
            f"--plan {path}: not a plan from `workload plan --json` ({what})"
        ) from None


def as_dict(plan: Plan) -> dict:
    return {
        "fan_in": plan.fan_in,
        "form": plan.form,
        "metrics_output": plan.metrics_output,
        "read_budget": plan.read_budget,
        "pods": plan.pods,
        "nodes": plan.size.nodes,
        "workflow_bytes": plan.size.total_bytes,
        "makespan_s": round(plan.makespan_s, 1),
        "bytes_moved": plan.bytes_moved,
        "levels": [dataclasses.asdict(lv) for lv in plan.levels],
        "request": dataclasses.asdict(plan.request),
    }
