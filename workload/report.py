"""`workload report FILE [--json PATH] [--gantt PATH]`: where a run's time went, level by level.

FILE (or "-" for stdin) is a finished Argo run's Workflow (`argo get -o json NAME`, `kubectl get
wf NAME -o json`), a timeline from `workload run --timeline` or `workload simulate --timeline`, or
`workload simulate --json`'s output: one timeline document (workload/timeline.py) either way.

Per pod attempt, its phases (unknown, null, where the timeline lacks what defines them):
- pending: created -> started, the pod's creation to its process's start (scheduling, image pull,
  container start); for Argo the Pod node's startedAt to the metrics line's process_started_at;
- start-up: started -> timed_from, the process's start to its Metrics object (the interpreter
  and imports);
- work: the metrics line's compute_s; a record with no metrics line at all (the simulator's)
  counts started -> finished as work, its storage folded in (start-up and storage unknown);
- storage: read_s + write_s (work and storage overlap where a pod reads ahead while it
  computes: each is within the metrics line's total_s, their sum need not be; the final pod's
  compute_s adds up its reader threads' time, which may exceed its wall time);
- duration: created -> finished. What follows the pod's own timing until finished (for Argo the
  executor collecting the outputs) is in the duration and in no phase.
Per level: pods, attempts, retries (attempts beyond one a pod), failed pods (no attempt
succeeded), the median and p95 of each phase over the attempts that know it (p95: nearest rank,
the ceil(0.95 n)-th smallest), rows read and bytes moved by the successful attempts, the storage's
MB/s (their bytes in and out over their storage seconds, MiB), stragglers and the critical path.

A straggler is a successful attempt whose duration exceeds its level's median duration (over the
level's successful attempts) by a robust margin: more than max(1.5 x median, median + 3 x 1.4826 x
MAD), MAD the median absolute deviation (1.4826 x MAD estimates a normal spread's sigma without
letting the stragglers widen it).

The critical path runs back from the pod attempt that ended last: from a pod to the pod it waited
for, its predecessor. In the steps form a level starts when the previous level's last pod ends, so
a pod's predecessor is the previous level's pod that ended last; in the dag form it is the one of
its producers (workload.layout.inputs: level-L pod i reads l{L}/{k i} .. l{L}/{k i + k - 1},
written by level L-1's pods of those numbers; the final pod reads them all) that ended last. Each
level is charged from its predecessor's end to its own pod's end: the levels' shares tile the
makespan, but for what follows the last pod (Argo's own finishing, or its wait before failing a
run), shown as "after".

Exit codes: 2 when FILE cannot be read or a flag is bad, 66 when it is not a Workflow status or a
timeline (not JSON, no status, an unknown format), 78 for --gantt without matplotlib.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import statistics
import sys
from collections import defaultdict

from . import command, layout
from . import timeline as timelines
from .errors import DataError

FORMAT = "workload.report/1"
PHASES = ("pending", "startup", "work", "storage", "duration")
STRAGGLER_RATIO = 1.5  # over the median duration, at least
STRAGGLER_MADS = 3.0  # and over the median by this many 1.4826 x MAD
MAD_SIGMA = 1.4826


def phases(p: dict) -> dict[str, float | None]:
    """A pod attempt's phases in seconds (see the module's docstring)."""
    started, timed = p.get("started"), p.get("timed_from")
    has_metrics = any(k in p for k in (*timelines.METRIC_FIELDS, "timed_from"))
    work = p.get("compute_s")
    if work is None and not has_metrics and started is not None:
        work = p["finished"] - started
    storage = None
    if "read_s" in p or "write_s" in p:
        storage = p.get("read_s", 0.0) + p.get("write_s", 0.0)
    return {
        "pending": None if started is None else started - p["created"],
        "startup": None if started is None or timed is None else timed - started,
        "work": work,
        "storage": storage,
        "duration": p["finished"] - p["created"],
    }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _spread(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p95": None, "known": 0}
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(p95(values), 3),
        "known": len(values),
    }


def straggler_threshold(durations: list[float]) -> float | None:
    if not durations:
        return None
    median = statistics.median(durations)
    mad = statistics.median(abs(d - median) for d in durations)
    return max(STRAGGLER_RATIO * median, median + STRAGGLER_MADS * MAD_SIGMA * mad)


def _level(row: dict, records: list[dict]) -> dict:
    by_pod: dict[int, list[dict]] = defaultdict(list)
    for p in records:
        by_pod[p["index"]].append(p)
    times = [phases(p) for p in records]
    ok = [(p, t) for p, t in zip(records, times, strict=True) if p.get("ok")]
    out = {
        "level": row["level"],
        "name": row["name"],
        "pods": len(by_pod),
        "attempts": len(records),
        "retries": len(records) - len(by_pod),
        "failed": sum(not any(a.get("ok") for a in tries) for tries in by_pod.values()),
        "start": min((p["created"] for p in records), default=None),
        "end": max((p["finished"] for p in records), default=None),
    }
    for name in PHASES:
        out[f"{name}_s"] = _spread([v for t in times if (v := t[name]) is not None])
    for name in timelines.COUNT_FIELDS:
        known = [p[name] for p, _ in ok if name in p]
        out[name] = sum(known) if known else None
    moved, seconds = 0, 0.0
    for p, t in ok:
        if t["storage"] is not None and "bytes_in" in p and "bytes_out" in p:
            moved, seconds = moved + p["bytes_in"] + p["bytes_out"], seconds + t["storage"]
    out["storage_mb_per_s"] = round(moved / 2**20 / seconds, 3) if seconds > 0 else None
    durations = [p["finished"] - p["created"] for p, _ in ok]
    threshold = straggler_threshold(durations)
    out["straggler_threshold_s"] = None if threshold is None else round(threshold, 3)
    out["stragglers"] = [
        {
            "index": p["index"],
            "attempt": p["attempt"],
            "node": p.get("node"),
            "duration_s": round(p["finished"] - p["created"], 3),
        }
        for p in sorted((p for p, _ in ok), key=lambda p: p["created"] - p["finished"])
        if threshold is not None and p["finished"] - p["created"] > threshold
    ]
    return out


def _producers(level: int, index: int, before: dict[int, float], final: bool, fan_in: int):
    """The previous level's pods whose outputs pod (level, index) reads (dag form)."""
    if final:
        return list(before)
    files = max(before) + 1  # level-(L-1) pod j writes l{L}/j
    if index >= layout.pods(files, fan_in):
        return []
    writer = {layout.level_file(level, j): j for j in before}
    return [writer[n] for n in layout.inputs(level, index, files, fan_in) if n in writer]


def critical_path(doc: dict, levels: list[int], final: int | None) -> list[dict]:
    """The pods of the critical path, first to last: (level, index, attempt, from, to)."""
    pods = doc["pods"]
    if not pods:
        return []
    ends: dict[int, dict[int, float]] = defaultdict(dict)  # level -> pod -> its last end
    firsts: dict[tuple[int, int], float] = {}
    last_attempt: dict[tuple[int, int], dict] = {}
    for p in pods:
        key = (p["level"], p["index"])
        level_ends = ends[p["level"]]
        level_ends[p["index"]] = max(level_ends.get(p["index"], -math.inf), p["finished"])
        firsts[key] = min(firsts.get(key, math.inf), p["created"])
        if key not in last_attempt or p["finished"] >= last_attempt[key]["finished"]:
            last_attempt[key] = p
    fan_in = doc.get("fan_in") or _fan_in_guess(ends, levels, final)
    last = max(pods, key=lambda p: p["finished"])
    chain = []
    level, index = last["level"], last["index"]
    while True:
        earlier = [lv for lv in levels if lv < level and ends.get(lv)]
        before_level = earlier[-1] if earlier else None
        before = ends.get(before_level, {}) if before_level is not None else {}
        if doc.get("form") == "dag" and before:
            chosen = _producers(level, index, before, level == final, fan_in)
        else:
            chosen = list(before)
        producer = max(chosen, key=lambda j: before[j]) if chosen else None
        start = before[producer] if producer is not None else 0.0
        a = last_attempt[level, index]
        chain.append(
            {
                "level": level,
                "index": index,
                "attempt": a["attempt"],
                "from": start,
                "to": ends[level][index],
                "wait_s": round(firsts[level, index] - start, 3),
                "retry_s": round(a["created"] - firsts[level, index], 3),
            }
        )
        if producer is None:
            break
        level, index = before_level, producer
    return chain[::-1]


def _fan_in_guess(ends: dict, levels: list[int], final: int | None) -> int:
    """The fan-in when the timeline does not say: the largest ratio of a level's pods to the
    next's (the last pod of a level may read fewer)."""
    guesses = [
        math.ceil(len(ends[a]) / len(ends[b]))
        for a, b in itertools.pairwise(levels)
        if b != final and ends.get(a) and ends.get(b)
    ]
    return max([2, *guesses])


def report(doc: dict) -> dict:
    """The per-level numbers of a timeline document (timeline.read has checked it)."""
    names = {row["level"]: row["name"] for row in doc["levels"]}
    for p in doc["pods"]:
        names.setdefault(p["level"], f"l{p['level']}")
    order = sorted(names)
    final = next((lv for lv in order if names[lv] == "final"), None)
    by_level: dict[int, list[dict]] = defaultdict(list)
    for p in doc["pods"]:
        by_level[p["level"]].append(p)
    makespan = doc.get("makespan_s")
    if makespan is None:
        makespan = max((p["finished"] for p in doc["pods"]), default=0.0)
    rows = [_level({"level": lv, "name": names[lv]}, by_level[lv]) for lv in order]
    chain = critical_path(doc, order, final)
    for row in rows:
        mine = [c for c in chain if c["level"] == row["level"]]
        seconds = sum(c["to"] - c["from"] for c in mine)
        row["critical_s"] = round(seconds, 3)
        row["critical_share"] = round(seconds / makespan, 4) if makespan else None
        row["critical_pod"] = (
            {k: mine[0][k] for k in ("index", "attempt", "wait_s", "retry_s")} if mine else None
        )
    last_end = chain[-1]["to"] if chain else 0.0
    unknown = [
        name
        for name in PHASES
        if any(r["attempts"] for r in rows)
        and all(r[f"{name}_s"]["known"] == 0 for r in rows if r["attempts"])
    ]
    return {
        "format": FORMAT,
        "source": doc.get("source"),
        "name": doc.get("name"),
        "form": doc.get("form"),
        "ok": doc.get("ok"),
        "makespan_s": round(makespan, 3),
        "pods": sum(r["pods"] for r in rows),
        "attempts": sum(r["attempts"] for r in rows),
        "after_last_pod_s": round(max(0.0, makespan - last_end), 3),
        "unknown": unknown,
        "levels": rows,
        "critical_path": [
            {**c, "from": round(c["from"], 3), "to": round(c["to"], 3)} for c in chain
        ],
    }


# -- the text ----------------------------------------------------------------------------------
def _s(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]


def describe(r: dict) -> str:
    name = f" {r['name']}" if r.get("name") else ""
    outcome = "succeeded" if r["ok"] else "failed"
    lines = [
        f"{r['source']} run{name}, {r['form']} form, {outcome}: {r['pods']:,} pods in "
        f"{r['attempts']:,} attempts, makespan {_s(r['makespan_s'])} s"
    ]
    head = ("level", "pods", "attempts", "retries", "failed", "start s", "end s", "critical s")
    table: list[tuple[str, ...]] = [(*head, "share", "stragglers")]
    for row in r["levels"]:
        share = row["critical_share"]
        table.append(
            (
                row["name"],
                f"{row['pods']:,}",
                f"{row['attempts']:,}",
                f"{row['retries']:,}",
                f"{row['failed']:,}",
                _s(row["start"]),
                _s(row["end"]),
                _s(row["critical_s"]),
                "-" if share is None else f"{share:.0%}",
                f"{len(row['stragglers']):,}",
            )
        )
    lines += _table(table)
    lines.append("seconds per pod attempt, median / p95 ('-': unknown):")
    table = [("level", "pending", "start-up", "work", "storage", "duration", "rows", "MB/s")]
    for row in r["levels"]:
        cells = [f"{_s(row[f'{n}_s']['median'])} / {_s(row[f'{n}_s']['p95'])}" for n in PHASES]
        rows_in = "-" if row["rows_in"] is None else f"{row['rows_in']:,}"
        table.append((row["name"], *cells, rows_in, _s(row["storage_mb_per_s"])))
    lines += _table(table)
    for row in r["levels"]:
        if row["stragglers"]:
            shown = ", ".join(
                f"pod {s['index']} ({_s(s['duration_s'])} s"
                + (f" on {s['node']})" if s.get("node") else ")")
                for s in row["stragglers"][:5]
            )
            more = len(row["stragglers"]) - 5
            lines.append(
                f"stragglers in {row['name']} (over {_s(row['straggler_threshold_s'])} s): "
                f"{shown}" + (f" and {more:,} more" if more > 0 else "")
            )
    path = ", ".join(
        f"{row['name']} {_s(row['critical_s'])} s (pod {row['critical_pod']['index']})"
        for row in r["levels"]
        if row["critical_pod"]
    )
    lines.append(f"critical path: {path}; after the last pod {_s(r['after_last_pod_s'])} s")
    if r["unknown"]:
        lines.append(f"unknown for every pod: {', '.join(r['unknown'])} (see workload/report.py)")
    return "\n".join(lines)


# -- the command line --------------------------------------------------------------------------
def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Workflow's JSON (argo get -o json), a timeline, or - for stdin")
    p.add_argument("--json", help="write the report's numbers here (JSON)")
    p.add_argument("--gantt", help="draw every pod attempt here (PNG; needs matplotlib)")


def main(args: argparse.Namespace) -> int:
    from .gantt import gantt, require_matplotlib

    for flag, path in (("--json", args.json), ("--gantt", args.gantt)):
        command.folder_exists(flag, path)
    if args.gantt:
        require_matplotlib()
    f = timelines.open_text(args.file)
    what = "stdin" if args.file == "-" else args.file
    gc.disable()  # hundreds of thousands of acyclic dicts: 1.5 s of 11 s on a 100k-pod status
    try:
        doc = timelines.read(f, what)
        numbers = report(doc)
    except (KeyError, TypeError) as exc:  # a timeline whose records lack what they need
        raise DataError(f"{what} is not a usable timeline: {type(exc).__name__} {exc}") from None
    finally:
        gc.enable()
        if f is not sys.stdin:
            f.close()
    print(describe(numbers))
    if args.json:
        timelines.dump(numbers, args.json)
    if args.gantt:
        gantt(doc, args.gantt)
    return 0
