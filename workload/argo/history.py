"""A finished Argo run's Workflow (`argo get -o json NAME`, `kubectl get wf NAME -o json`) read
for its timeline document (workload/timeline.py, of_workflow), its nodes one at a time.

status.nodes maps node ids to NodeStatus; above MAX_WORKFLOW_SIZE Argo keeps
status.compressedNodes instead, the same map's JSON gzipped and base64-encoded (argo/status.py):
both are read, the compressed one decompressed as a stream. Of the nodes only the Pod nodes of our
templates become pod records (workload/argo/build.py): `process-data` (level and index from its
inputs `level` and `file_number`, its metrics line from the output `metrics`) and `merge-data`,
the final pod (level from `level`, index 0; a metrics line only if an output holds one: its
`summary` output is the result's summary.json, whose `rows` are the rows it read). A Pod node
under a Retry node is named "...(n)", n its attempt.

Argo's NodeStatus holds no container start, so the times are:
- created: the Pod node's startedAt, when the controller created the pod;
- finished: its finishedAt, once the executor has collected the outputs;
- started: the metrics line's process_started_at (the pod process's start, workload/metrics.py);
  unknown (null) without it: an old metrics line, or an attempt that failed before writing one;
- timed_from: the metrics line's finished_at less its total_s, when the pod's own timing began.
startedAt and finishedAt are whole seconds (truncated); the metrics line's times are the node's
clock, to the millisecond. The run's start is status.startedAt, its makespan status.finishedAt
less that.

Streaming: a 100k-pod status (the node model's, 266 MB, 199,974 nodes) is read node after node
(workload/jsonstream.py): 10.1 s to its timeline with a peak RSS of 348 MB, against 14.3 s and
1,237 MB for json.load of the whole object and the same conversion; `workload report` on it,
11.1 s in a fresh process (medians of 3, benchmarks/report_100k.py, on this 2-core machine,
where json.loads of the file alone takes 8.5 s). Passing the Retry nodes (half of them) over
undecoded, found by their ids, was tried and measured no faster side by side (7.4 s against
7.3 s in one process): the time is json's C decoder on the Pod nodes and their metrics lines,
and the pod records built in Python.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import io
import json
import re
import zlib
from datetime import datetime

from .. import jsonstream
from ..errors import DataError

PROCESS, FINAL = "process-data", "merge-data"
_ATTEMPT = re.compile(r"\((\d+)\)$")
_FORMS = {"Steps": "steps", "StepGroup": "steps", "DAG": "dag", "TaskGroup": "dag"}


@functools.lru_cache(maxsize=1 << 16)
def unix(stamp: str) -> float:
    """An RFC 3339 time as unix seconds ("2026-12-01T10:00:00Z")."""
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        raise DataError(f"not an RFC 3339 time: {stamp!r}") from None


class Status:
    """What a status holds for the report: its own fields, the pod nodes, the form."""

    def __init__(self) -> None:
        self.fields: dict = {}
        # (level, index, attempt, node, created, finished, ok, metrics, final)
        self.pods: list[tuple] = []
        self.form: str | None = None


def read_status(stream: jsonstream.Stream) -> Status:
    """The Workflow's status, from the stream at its value."""
    out = Status()
    for key in stream.members():
        if key == "nodes" and stream.peek() == "{":
            _nodes(stream, out)
        elif key == "compressedNodes":
            _nodes(_compressed(stream.value(), stream.what), out)
        else:
            out.fields[key] = stream.value()
    return out


def _compressed(text, what: str) -> jsonstream.Stream:
    try:
        raw = base64.b64decode(text, validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise DataError(f"{what}: status.compressedNodes is not base64") from None
    f = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8")
    return jsonstream.Stream(_Checked(f, what), f"{what}'s status.compressedNodes")


class _Checked:
    """A text stream whose gzip and decoding errors are DataErrors."""

    def __init__(self, f, what: str):
        self.f, self.what = f, what

    def read(self, n: int, /) -> str:
        try:
            return self.f.read(n)
        except (OSError, EOFError, zlib.error):
            raise DataError(f"{self.what}: status.compressedNodes is not gzip") from None


def _nodes(stream: jsonstream.Stream, out: Status) -> None:
    for _, node in stream.items():
        if not isinstance(node, dict):
            raise DataError(f"{stream.what}: a node is not an object")
        kind = node.get("type")
        if out.form is None and kind in _FORMS:
            out.form = _FORMS[kind]
        if kind == "Pod":
            template = node.get("templateName") or (node.get("templateRef") or {}).get("template")
            if template in (PROCESS, FINAL):
                out.pods.append(_pod(node, template == FINAL, stream.what))


def _parameters(held) -> dict:
    listed = held.get("parameters") if isinstance(held, dict) else None
    if not isinstance(listed, list):
        return {}
    return {p.get("name"): p.get("value") for p in listed if isinstance(p, dict)}


def _pod(node: dict, final: bool, what: str) -> tuple:
    name = str(node.get("name", ""))
    inputs = _parameters(node.get("inputs"))
    try:
        level = int(inputs["level"])
        index = 0 if final else int(inputs["file_number"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{what}: pod node {name!r} lacks its level or file_number") from None
    found = _ATTEMPT.search(name)
    outputs = _parameters(node.get("outputs"))
    metrics = _json_object(outputs.get("metrics"))
    if final and not metrics:
        summary = _json_object(outputs.get("summary"))
        if isinstance(summary.get("rows"), int):
            metrics = {"rows_in": summary["rows"]}
    started = node.get("startedAt")
    if not started:
        raise DataError(f"{what}: pod node {name!r} has no startedAt")
    return (
        level,
        index,
        int(found.group(1)) if found else 0,
        node.get("hostNodeName"),
        unix(started),
        unix(node["finishedAt"]) if node.get("finishedAt") else None,
        node.get("phase") == "Succeeded",
        metrics,
        final,
    )


def _json_object(text) -> dict:
    if not isinstance(text, str) or not text.startswith("{"):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
