"""The timeline document of a run, "workload.timeline/1": what `workload report` reads, written by
the scale simulator (`workload simulate --timeline`, workload/simulate.py), by the local runner
(`workload run --timeline`, workload/run_local.py) and made from a finished Argo run's Workflow
(workload/argo/history.py). Times are seconds from the run's start, to the millisecond:

    {"format": "workload.timeline/1", "source": "simulate" | "local" | "argo", "form": "steps",
     "ok": true, "makespan_s": 71.3, "fan_in": 2 (optional; the dag form's producers),
     "name": the run's name (optional),
     "levels": [{"level": 1, "name": "l1", "pods": 64, "attempts": 65, "retries": 1,
                 "start": 0.0, "end": 38.2, "critical_s": 38.2 or null}, ...],
     "pods": [{"level": 1, "index": 0, "attempt": 0, "node": "node-0", "created": 0.0,
               "started": 5.0, "finished": 5.6, "ok": true, ...}, ...]}

A pod record (one per attempt) always has level, index, attempt, node, created, finished and ok;
`started` is the pod's process start (null where unknown). The optional fields come from the
pod's metrics line (workload/metrics.py) where there is one: `timed_from`, when the pod's own
timing began (the line's finished_at less its total_s), and the line's read_s, compute_s,
write_s, total_s, rows_in, rows_out, bytes_in and bytes_out. The simulator writes none of them.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import IO

from . import jsonstream
from .argo import history
from .errors import DataError, UsageError

FORMAT = "workload.timeline/1"
METRIC_FIELDS = ("read_s", "compute_s", "write_s", "total_s")
COUNT_FIELDS = ("rows_in", "rows_out", "bytes_in", "bytes_out")
_FIELDS = (*METRIC_FIELDS, *COUNT_FIELDS)


def _number(value) -> float | None:
    return value if type(value) in (int, float) else None  # not a bool


def pod(
    level: int,
    index: int,
    attempt: int,
    node: str | None,
    created: float,
    finished: float,
    ok: bool,
    metrics: dict | None = None,
    zero: float = 0.0,
) -> dict:
    """A pod record: times (here on one clock, e.g. unix seconds) less `zero`, the run's start,
    with what the metrics line tells. `started` is the metrics line's process_started_at, never
    before `created` (the kernel's start time is counted in clock ticks, Argo's in whole seconds,
    and a node's clock is not the controller's)."""
    out: dict = {
        "level": level,
        "index": index,
        "attempt": attempt,
        "node": node,
        "created": round(created - zero, 3),
        "started": None,
        "finished": round(finished - zero, 3),
        "ok": ok,
    }
    if not metrics:
        return out
    began = _number(metrics.get("process_started_at"))
    if began is not None:
        out["started"] = round(max(began, created) - zero, 3)
    end, total = _number(metrics.get("finished_at")), _number(metrics.get("total_s"))
    if end is not None and total is not None:
        out["timed_from"] = round(end - total - zero, 3)
    for name in _FIELDS:
        value = metrics.get(name)
        if type(value) in (int, float):
            out[name] = value
    return out


def summarize(pods: Iterable[dict], names: dict[int, str]) -> list[dict]:
    """Per level (`names`: level -> name, in order) from the timeline's pod records alone. A level
    no pod reached has no start or end."""
    by_level: dict[int, list[dict]] = defaultdict(list)
    for p in pods:
        by_level[p["level"]].append(p)
    out = []
    for level, name in names.items():
        records = by_level[level]
        count = len({p["index"] for p in records})
        out.append(
            {
                "level": level,
                "name": name,
                "pods": count,
                "attempts": len(records),
                "retries": len(records) - count,
                "start": min((p["created"] for p in records), default=None),
                "end": max((p["finished"] for p in records), default=None),
            }
        )
    return out


def document(
    source: str,
    pods: list[dict],
    names: dict[int, str],
    *,
    form: str,
    ok: bool,
    fan_in: int | None,
    makespan_s: float,
    critical: dict[int, float] | None = None,
    name: str | None = None,
) -> dict:
    """The timeline document of `pods` (records as `pod` makes them, in order of creation),
    `names` naming its levels; `critical` holds each level's seconds on the critical path
    where the source can tell (the simulator), else the report works them out."""
    levels = summarize(pods, names)
    for row in levels:
        seconds = None if critical is None else critical[row["level"]]
        row["critical_s"] = None if seconds is None else round(seconds, 3)
    return {
        "format": FORMAT,
        "source": source,
        **({"name": name} if source == "argo" else {}),
        "form": form,
        "ok": ok,
        "fan_in": fan_in,
        "makespan_s": round(makespan_s, 3),
        "levels": levels,
        "pods": pods,
    }


def open_text(path: str) -> IO[str]:
    """The file at `path`, or stdin for "-"."""
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")  # the caller closes it
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a file") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied") from None


def read(f: IO[str], what: str = "the input") -> dict:
    """A timeline document from any of its three sources: a timeline, `workload simulate --json`'s
    output (its "timeline"), or an Argo Workflow (`argo get -o json`, `kubectl get wf -o json`),
    whose nodes are read one by one."""
    stream = jsonstream.Stream(f, what)
    top: dict = {}
    status = None
    for key in stream.members():
        if key == "status" and stream.peek() == "{":
            status = history.read_status(stream)
        else:
            top[key] = stream.value()
    stream.end()
    if status is not None:
        return of_workflow(top, status)
    doc = top.get("timeline") if "format" not in top else top
    if not isinstance(doc, dict):
        raise DataError(
            f"{what} is neither a Workflow with a status nor a timeline "
            f"(no 'status', 'format' or 'timeline' key)"
        )
    check(doc, what)
    return doc


def check(doc: dict, what: str = "the timeline") -> None:
    if doc.get("format") != FORMAT:
        raise DataError(f"{what} has format {doc.get('format')!r}, not {FORMAT!r}")
    pods, levels = doc.get("pods"), doc.get("levels")
    if not isinstance(pods, list) or not isinstance(levels, list):
        raise DataError(f"{what} lacks its 'pods' or 'levels' list")
    for p in pods:
        if not isinstance(p, dict) or any(
            _number(p.get(k)) is None for k in ("level", "index", "created", "finished")
        ):
            raise DataError(f"{what} has a pod record without level, index, created or finished")
    for row in levels:
        if not isinstance(row, dict) or _number(row.get("level")) is None:
            raise DataError(f"{what} has a level without its number")


def dump(doc: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


# -- an Argo run's ----------------------------------------------------------------------------
def _fan_in(value) -> int | None:
    """The pods' --fan-in, from the templates' args (spec, or status.storedTemplates)."""
    if isinstance(value, dict):
        for item in value.values():
            if (found := _fan_in(item)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if item == "--fan-in" and i + 1 < len(value) and str(value[i + 1]).isdigit():
                return int(value[i + 1])
            if (found := _fan_in(item)) is not None:
                return found
    return None


def of_workflow(top: dict, status: history.Status) -> dict:
    """The timeline document of a Workflow (`top`: its fields but the status)."""
    fields = status.fields
    if not status.pods:
        raise DataError("the Workflow's status has no pod nodes of process-data or merge-data")
    first = min(p[4] for p in status.pods)
    zero = history.unix(fields["startedAt"]) if fields.get("startedAt") else first
    end = max((p[5] for p in status.pods if p[5] is not None), default=first)
    if fields.get("finishedAt"):
        end = max(end, history.unix(fields["finishedAt"]))
    pods = []
    for level, index, attempt, host, created, done, ok, metrics, _ in status.pods:
        finished = end if done is None else done
        pods.append(pod(level, index, attempt, host, created, finished, ok, metrics, zero))
    pods.sort(key=lambda p: (p["created"], p["level"], p["index"], p["attempt"]))
    finals = {p[0] for p in status.pods if p[8]}
    names = {
        level: "final" if level in finals else f"l{level}"
        for level in sorted({p["level"] for p in pods})
    }
    return document(
        "argo",
        pods,
        names,
        name=(top.get("metadata") or {}).get("name"),
        form=status.form or "steps",
        ok=fields.get("phase") == "Succeeded",
        fan_in=_fan_in(top.get("spec")) or _fan_in(fields.get("storedTemplates")),
        makespan_s=end - zero,
    )
