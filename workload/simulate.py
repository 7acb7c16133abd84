"""`workload simulate`: a discrete-event model of one run of a plan, pod attempt by pod attempt.

Where `workload plan` estimates each level in waves, this plays the run out event by event:
- the controller creates pods no faster than `Rates.pods_created_per_s` (a token bucket holding
  CREATE_BURST), and holds at most `parallelism` pods: a pod keeps its place from its creation to
  its end, as Argo counts pending and running pods alike;
- a pod starts `Rates.pod_start_s` after its creation. With --cold-image the first pod on each
  node also waits `Rates.cold_pull_s` for the image, and the node's later pods wait for that same
  pull while it lasts (the kubelet pulls an image once per node);
- then it works for the planner's cost of its own inputs (a fixed cost, plus the longer of its
  rows at the measured rate and its bytes at the storage's bandwidth), no faster than its share of
  the prefix's request limits, times a log-normal jitter of sigma --jitter (0: none);
- steps form: a level's pods are ready when the previous level's last pod ends; dag form: a pod is
  ready when the pods that write its inputs (layout.inputs) end, the final pod when all do;
- an attempt fails with probability --failure-rate, part-way through its work, and is retried
  after Argo's backoff (BACKOFF_S, times BACKOFF_FACTOR per attempt, at most BACKOFF_CAP_S), up to
  --retries times. A pod out of retries fails the run as build.py's templates do: Argo reports it
  one backoff after its last attempt (it waits before evaluating the retry expression); in the
  steps form the level's queued pods still start and no later level does, in the dag form no new
  pod starts (dag.failFast). Either way the run ends when its last pod does.
Every draw comes from (seed, level, index, attempt), so a pod's fate does not depend on the
order of events. A DAG beyond MAX_DAG_TASKS runs chunks of pods per task (layout.dag_chunk),
each waiting for its producers' chunks; this models one task per pod, so it is optimistic there.

The critical path runs back from the run's end: each attempt's work and start, then what its
creation waited for last: its producer's end (or its level's barrier), its earlier attempt's end
and the backoff, the end of the pod whose place it took (parallelism), or the pod created before
it (the controller's rate). Its segments tile the makespan; each is charged to its pod's level.

The timeline, `timeline(run)`, as --timeline writes it (workload/timeline.py's format, which
`workload report` also makes from an Argo run's Workflow and from `workload run --timeline`): JSON,
times in seconds from the run's start, rounded to milliseconds; `gantt` (workload/gantt.py) draws
it:

    {"format": "workload.timeline/1", "source": "simulate", "form": "steps", "ok": true,
     "fan_in": 2, "makespan_s": 71.3,
     "levels": [{"level": 1, "name": "l1", "pods": 64, "attempts": 65, "retries": 1,
                 "start": 0.0, "end": 38.2, "critical_s": 38.2}, ...],
     "pods": [{"level": 1, "index": 0, "attempt": 0, "node": "node-0", "created": 0.0,
               "started": 5.0, "finished": 5.6, "ok": true}, ...]}

`critical_s` is null where the producer cannot tell what each pod waited for. `--json` prints
{"plan": the plan as `workload plan --json` prints it, "options": Options, "timeline": this}.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import itertools
import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from . import command, layout, planner
from .errors import UsageError
from .gantt import gantt, require_matplotlib
from .timeline import document

# Argo's retryStrategy as build.py renders it: Options.retries, and BACKOFF (10s, factor 2, cap
# 5m). The n-th retry waits BACKOFF_S * BACKOFF_FACTOR ** (n - 1), at most the cap
# (workflow/controller/operator.go, processNodeRetries).
RETRIES = 3
BACKOFF_S = 10.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 300.0
# The controller's creations in one burst. Rates.pods_created_per_s is a steady rate measured on
# one-pod workflows (issue 9), which says nothing of a burst: 1 keeps the model at that rate.
CREATE_BURST = 1
# CPUs a node gives pods, which sets how many nodes pull a cold image: 16 vCPU nodes (ACK's and
# EKS's common ecs.g7.4xlarge / m6i.4xlarge). An assumption, not a measurement: override it.
NODE_CPUS = 16.0
# How close two times are to be the same instant (floating point; the model works in seconds).
EPSILON_S = 1e-9
KINDS = ("create", "start", "work", "backoff")  # what critical-path time is spent on


@dataclass(frozen=True)
class Options:
    """The simulator's own constants and choices (the shared ones are planner.Rates)."""

    failure_rate: float = 0.0  # chance that an attempt fails transiently
    retries: int = RETRIES
    cold_image: bool = False
    jitter: float = 0.0  # sigma of the log-normal factor on each attempt's work
    seed: int = 0
    node_cpus: float = NODE_CPUS
    burst: int = CREATE_BURST
    backoff_s: float = BACKOFF_S
    backoff_factor: float = BACKOFF_FACTOR
    backoff_cap_s: float = BACKOFF_CAP_S

    def __post_init__(self):
        if not 0.0 <= self.failure_rate <= 1.0:
            raise UsageError(f"--failure-rate must be within 0..1, got {self.failure_rate:g}")
        for name in ("retries", "jitter", "seed", "backoff_s", "backoff_factor", "backoff_cap_s"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{_flag(name)} must be >= 0, got {getattr(self, name)}")
        for name in ("node_cpus", "burst"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{_flag(name)} must be > 0, got {getattr(self, name)}")

    def backoff(self, attempt: int) -> float:
        """The wait after attempt `attempt` (0, 1, ...) failed."""
        return min(self.backoff_s * self.backoff_factor**attempt, self.backoff_cap_s)


# The Rates the planner and the model divide by.
POSITIVE_RATES = ("pods_created_per_s", "merge_rows_per_s", "final_rows_per_s", "two_cpu_speedup")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def check_rates(rates: planner.Rates) -> None:
    for name in POSITIVE_RATES:
        if not getattr(rates, name) > 0:
            raise UsageError(f"--{_flag(name)} must be > 0, got {getattr(rates, name):g}")


@dataclass(eq=False)
class Attempt:
    """One pod attempt; `cause` is what its creation waited for last (see the docstring)."""

    level: int
    index: int
    attempt: int
    node: int
    created: float
    started: float
    finished: float
    ok: bool
    cause: tuple[str, Attempt | None] = field(repr=False)


class Segment(NamedTuple):
    attempt: Attempt
    kind: str  # one of KINDS
    start: float
    end: float


@dataclass
class Run:
    plan: planner.Plan
    options: Options
    attempts: list[Attempt]
    failed: Attempt | None  # the pod that ran out of retries
    makespan_s: float
    critical: list[Segment]

    @property
    def ok(self) -> bool:
        return self.failed is None


@dataclass
class _Pod:
    level: int
    index: int
    work_s: float
    waiting: int = 0  # producers not yet done (dag form)
    attempts: int = 0


class _Bucket:
    """The controller's creations: `rate` a second, at most `burst` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), 0.0  # tokens left at time `at`

    def next_at(self) -> float:
        """When the next creation may happen."""
        if self.tokens >= 1 or math.isinf(self.rate):
            return self.at
        return self.at + (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        refill = self.burst if math.isinf(self.rate) else (now - self.at) * self.rate
        self.tokens = min(self.burst, self.tokens + refill) - 1
        self.at = now


def _pod_seconds(plan: planner.Plan) -> dict[int, tuple[float, float]]:
    """Per level, a pod's (fixed seconds, seconds per input file) by the planner's cost model.

    The planner prices a level, not a pod; without a pod start, a creation limit, a cold pull
    and with one wave, its level time is one pod's time at the level's fan-in. Its work and
    transfer grow with the inputs, so a pod with fewer (the last of a level) takes its share.
    The request limits: all of a level's running pods share the prefix's rate."""
    request = plan.request
    rates = request.rates
    isolated = dataclasses.replace(
        request,
        parallelism=max(lv.pods for lv in plan.levels),
        rates=dataclasses.replace(
            rates, pod_start_s=0.0, cold_pull_s=0.0, pods_created_per_s=math.inf
        ),
    )
    storage = planner.STORAGE[request.storage]
    out = {}
    for lv in planner.evaluate(isolated, plan.fan_in).levels:
        sharing = min(request.parallelism, lv.pods)
        body = lv.seconds - rates.pod_fixed_s
        for per_s, limit in (
            (lv.gets_per_s, storage.get_per_s),
            (lv.puts_per_s, storage.put_per_s),
        ):
            if limit is not None:  # this pod's requests at its share of the limit
                body = max(body, per_s * lv.seconds / lv.pods * sharing / limit)
        out[lv.level] = (rates.pod_fixed_s, body / lv.fan_in)
    return out


class _Sim:
    def __init__(self, plan: planner.Plan, options: Options):
        self.plan, self.options, self.rates = plan, options, plan.request.rates
        self.parallelism = plan.request.parallelism
        per_node = max(1, math.floor(options.node_cpus / plan.request.pod_cpu))
        self.nodes = math.ceil(self.parallelism / per_node)
        self.last_level = plan.levels[-1].level
        self.pods = _pods(plan)
        self.consumers = _consumers(plan, self.pods) if plan.form == "dag" else {}
        self.counts = {lv.level: lv.pods for lv in plan.levels}
        self.left = dict(self.counts)  # pods not yet done
        self.bucket = _Bucket(self.rates.pods_created_per_s, options.burst)
        self.free: list = [(0.0, slot, None) for slot in range(self.parallelism)]
        self.ready: list = []  # (ready at, level, index, seq, cause)
        self.events: list = []  # (time, seq, attempt or None for a wake-up, slot)
        self.seq = itertools.count()
        self.pulled: dict[int, float] = {}  # node -> when its image is there
        self.attempts: list[Attempt] = []
        self.last_created: Attempt | None = None
        self.failed: Attempt | None = None
        self.failed_at = 0.0

    def run(self) -> Run:
        first = self.plan.levels[0].level
        for (level, index), pod in self.pods.items():
            if (pod.waiting == 0) if self.plan.form == "dag" else (level == first):
                self._queue(level, index, 0.0, ("ready", None))
        self._create(0.0)
        while self.events:
            now = self.events[0][0]
            while self.events and self.events[0][0] == now:
                _, _, attempt, slot = heapq.heappop(self.events)
                if attempt is not None:
                    self._finish(attempt, slot, now)
            self._create(now)
        return self._result()

    def _queue(self, level: int, index: int, at: float, cause: tuple) -> None:
        heapq.heappush(self.ready, (at, level, index, next(self.seq), cause))

    def _event(self, at: float, attempt: Attempt | None = None, slot: int = -1) -> None:
        """An attempt's end at `at`, or (no attempt) a wake-up: a token or a retry is due."""
        heapq.heappush(self.events, (at, next(self.seq), attempt, slot))

    def _create(self, now: float) -> None:
        if self.failed is not None and self.plan.form == "dag":
            return  # dag.failFast: no new pod once a task has failed
        while self.ready and self.ready[0][0] <= now + EPSILON_S and self.free:
            token = self.bucket.next_at()
            if token > now + EPSILON_S:
                self._event(token)
                return
            ready_at, level, index, _, cause = heapq.heappop(self.ready)
            free_at, slot, freed_by = heapq.heappop(self.free)
            if ready_at < now - EPSILON_S:  # it waited: for a place, or for the controller
                slot_bound = free_at >= now - EPSILON_S
                cause = ("slot", freed_by) if slot_bound else ("create", self.last_created)
            self.bucket.take(now)
            self._start(self.pods[level, index], slot, now, cause)

    def _start(self, pod: _Pod, slot: int, now: float, cause: tuple) -> None:
        n, o = pod.attempts, self.options
        pod.attempts += 1
        draw = random.Random(f"{o.seed}/{pod.level}/{pod.index}/{n}")
        fails, point, spread = draw.random() < o.failure_rate, draw.random(), draw.gauss(0.0, 1.0)
        work = pod.work_s * math.exp(o.jitter * spread) * (point if fails else 1.0)
        node = slot % self.nodes
        started = now + self.rates.pod_start_s
        if o.cold_image:
            started = max(started, self.pulled.setdefault(node, started + self.rates.cold_pull_s))
        attempt = Attempt(
            pod.level, pod.index, n, node, now, started, started + work, not fails, cause
        )
        self.attempts.append(attempt)
        self.last_created = attempt
        self._event(attempt.finished, attempt, slot)

    def _finish(self, a: Attempt, slot: int, now: float) -> None:
        heapq.heappush(self.free, (now, slot, a))
        if a.ok:
            self._done(a, now)
        elif a.attempt < self.options.retries:
            due = now + self.options.backoff(a.attempt)
            self._queue(a.level, a.index, due, ("backoff", a))
            self._event(due)
        elif self.failed is None:
            self.failed, self.failed_at = a, now + self.options.backoff(a.attempt)

    def _done(self, a: Attempt, now: float) -> None:
        self.left[a.level] -= 1
        if self.plan.form == "dag":
            for level, index in self.consumers.get((a.level, a.index), ()):
                consumer = self.pods[level, index]
                consumer.waiting -= 1
                if consumer.waiting == 0:
                    self._queue(level, index, now, ("ready", a))
        elif self.left[a.level] == 0 and a.level < self.last_level:
            for index in range(self.counts[a.level + 1]):
                self._queue(a.level + 1, index, now, ("ready", a))

    def _result(self) -> Run:
        last = max(self.attempts, key=lambda a: a.finished)
        makespan, reported = last.finished, []
        if self.failed is not None and self.failed_at >= last.finished:
            last, makespan = self.failed, self.failed_at
            reported = [Segment(last, "backoff", last.finished, makespan)]
        critical = [s for s in [*_trace(last), *reported] if s.end > s.start]
        return Run(self.plan, self.options, self.attempts, self.failed, makespan, critical)


def _pods(plan: planner.Plan) -> dict[tuple[int, int], _Pod]:
    seconds = _pod_seconds(plan)
    pods = {}
    for lv in plan.levels:
        fixed, per_input = seconds[lv.level]
        for index in range(lv.pods):
            inputs = lv.files if lv.final else len(_inputs(lv, index))
            pods[lv.level, index] = _Pod(lv.level, index, fixed + per_input * inputs)
    return pods


def _inputs(lv: planner.Level, index: int) -> list[str]:
    return layout.inputs(lv.level, index, lv.files, lv.fan_in)


def _consumers(plan: planner.Plan, pods: dict) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """dag form: the pods each pod's output feeds (level-L pod j writes l{L+1}/j)."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for before, lv in itertools.pairwise(plan.levels):
        writer = {layout.level_file(lv.level, j): j for j in range(before.pods)}
        for index in range(lv.pods):
            names = writer if lv.final else _inputs(lv, index)  # the final pod reads them all
            for producer in (writer[name] for name in names):
                out[before.level, producer].append((lv.level, index))
                pods[lv.level, index].waiting += 1
    return out


def _trace(last: Attempt) -> list[Segment]:
    """The critical path up to `last`'s end, from the run's start (see the docstring)."""
    out: list[Segment] = []
    a: Attempt | None = last
    at_end = True  # at the attempt's end (else at its creation)
    while a is not None:
        if at_end:
            out += [
                Segment(a, "work", a.started, a.finished),
                Segment(a, "start", a.created, a.started),
            ]
        kind, by = a.cause
        if by is not None and kind in ("create", "backoff"):
            out.append(Segment(a, kind, by.created if kind == "create" else by.finished, a.created))
        a, at_end = by, kind != "create"
    return out[::-1]


def simulate(plan: planner.Plan, options: Options = Options()) -> Run:
    """Play `plan`'s run out, event by event."""
    return _Sim(plan, options).run()


# -- what it tells -----------------------------------------------------------------------------
def level_name(plan: planner.Plan, level: int) -> str:
    return "final" if level == plan.levels[-1].level else f"l{level}"


def critical_by_level(run: Run) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {
        lv.level: dict.fromkeys(KINDS, 0.0) for lv in run.plan.levels
    }
    for s in run.critical:
        out[s.attempt.level][s.kind] += s.end - s.start
    return out


def timeline(run: Run) -> dict:
    """The JSON document of the module's docstring."""
    pods = [
        {
            "level": a.level,
            "index": a.index,
            "attempt": a.attempt,
            "node": f"node-{a.node}",
            "created": round(a.created, 3),
            "started": round(a.started, 3),
            "finished": round(a.finished, 3),
            "ok": a.ok,
        }
        for a in sorted(run.attempts, key=lambda a: (a.created, a.level, a.index, a.attempt))
    ]
    names = {lv.level: level_name(run.plan, lv.level) for lv in run.plan.levels}
    critical = {level: sum(kinds.values()) for level, kinds in critical_by_level(run).items()}
    return document(
        "simulate",
        pods,
        names,
        form=run.plan.form,
        ok=run.ok,
        fan_in=run.plan.fan_in,
        makespan_s=run.makespan_s,
        critical=critical,
    )


def describe(run: Run) -> str:
    plan, o = run.plan, run.options
    r, rates = plan.request, plan.request.rates
    image = f"cold image ({rates.cold_pull_s:g} s a node)" if o.cold_image else "image cached"
    head = (
        f"simulated: {r.files:,} files, fan-in {plan.fan_in}, {plan.form} form, {plan.pods:,} "
        f"pods in {len(run.attempts):,} attempts; parallelism {r.parallelism}, "
        f"{rates.pods_created_per_s:g} pods/s, pod start {rates.pod_start_s:g} s, {image}, "
        f"failure rate {o.failure_rate:g} with {o.retries} retries\n"
    )
    critical = critical_by_level(run)
    rows = [("level", "pods", "attempts", "start s", "end s", "plan s", "critical s", "spent on")]
    for lv, row in zip(plan.levels, timeline(run)["levels"], strict=True):
        spent = critical[lv.level]
        rows.append(
            (
                row["name"],
                f"{row['pods']:,}",
                f"{row['attempts']:,}",
                "-" if row["start"] is None else f"{row['start']:,.1f}",
                "-" if row["end"] is None else f"{row['end']:,.1f}",
                f"{lv.seconds:,.1f}",
                f"{sum(spent.values()):,.1f}",
                _spent(spent) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    total = dict.fromkeys(KINDS, 0.0)
    for spent in critical.values():
        for kind, seconds in spent.items():
            total[kind] += seconds
    tail = (
        f"makespan {run.makespan_s:,.1f} s (the planner's estimate {plan.makespan_s:,.1f} s); "
        f"critical path: {_spent(total)}"
    )
    if run.failed is not None:
        a = run.failed
        tail += (
            f"\nthe run fails: {level_name(plan, a.level)} pod {a.index} failed all its "
            f"{a.attempt + 1} attempts"
        )
    return head + "\n".join(lines) + "\n" + tail


def _spent(seconds: dict[str, float]) -> str:
    """'create 14.0, start 5.0, ...': the critical path's time by kind, largest first."""
    kinds = sorted((s, k) for k, s in seconds.items() if s > 0.05)
    return ", ".join(f"{k} {s:,.1f}" for s, k in reversed(kinds))


# -- the command line --------------------------------------------------------------------------
def arguments(p: argparse.ArgumentParser) -> None:
    """`workload simulate`'s own options, after `workload plan`'s."""
    p.add_argument(
        "--failure-rate",
        type=command.number("--failure-rate"),
        default=0.0,
        help="chance that an attempt fails transiently and is retried",
    )
    p.add_argument("--retries", type=command.integer("--retries", 0), default=RETRIES)
    p.add_argument(
        "--cold-image", action="store_true", help="every node pulls the image for its first pod"
    )
    p.add_argument(
        "--jitter",
        type=command.number("--jitter"),
        default=0.0,
        help="sigma of a log-normal factor on each attempt's work",
    )
    p.add_argument("--seed", type=command.integer("--seed", 0), default=0)
    p.add_argument("--node-cpus", type=command.number("--node-cpus"), default=NODE_CPUS)
    p.add_argument("--timeline", help="write the per-pod timeline here (JSON)")
    p.add_argument("--gantt", help="draw the timeline here (PNG; needs matplotlib)")
    for f in dataclasses.fields(planner.Rates):
        flag = f"--{_flag(f.name)}"
        p.add_argument(
            flag, type=command.number(flag), help=f"(default: the planner's {f.default:g})"
        )


def rates(args: argparse.Namespace) -> planner.Rates:
    """planner.Rates with the options' overrides."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(planner.Rates)}
    rates = planner.Rates(**{k: v for k, v in given.items() if v is not None})
    check_rates(rates)
    return rates


def options(args: argparse.Namespace) -> Options:
    names = ("failure_rate", "retries", "cold_image", "jitter", "seed", "node_cpus")
    return Options(**{name: getattr(args, name) for name in names})


def main(plan: planner.Plan, args: argparse.Namespace) -> int:
    """Simulate, print, and write what the options ask for."""
    for flag, path in (("--timeline", args.timeline), ("--gantt", args.gantt)):
        command.folder_exists(flag, path)
    if args.gantt:
        require_matplotlib()
    run = simulate(plan, options(args))
    doc = timeline(run)
    if args.timeline:
        with open(args.timeline, "w") as f:
            json.dump(doc, f, indent=1)
    if args.gantt:
        gantt(doc, args.gantt)
    if args.json:  # as `workload plan --json` prints the plan, and then the run
        whole = {"plan": planner.as_dict(plan), "options": dataclasses.asdict(run.options)}
        print(json.dumps({**whole, "timeline": doc}, indent=1))
    else:
        print(describe(run))
    return 0
