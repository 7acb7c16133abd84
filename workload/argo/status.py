"""How big a finished run's Workflow object gets: the node model behind `workload plan`.

Argo keeps every node of a run in the Workflow's status. Before each update the controller
measures the whole object as JSON; above MAX_WORKFLOW_SIZE (1 MiB by default) it replaces
status.nodes by status.compressedNodes, the nodes' JSON gzipped and base64-encoded, and if the
object is still too large the run errors with "workflow is longer than maximum allowed size"
(workflow/packer/packer.go, CompressWorkflowIfNeeded; util/file CompressEncodeString; Argo v4.1,
f016ad89). Without a SQL database for node status offload that is a hard limit on one
Workflow's pods.

The model builds the nodes a run leaves, field by field as Argo's NodeStatus has them
(pkg/apis/workflow/v1alpha1/workflow_types.go), with names, ids, times and parameters of real
lengths, and compresses them the way the controller does, so the figure depends on the same
redundancy real status has. Nodes of a finished run:
- steps form: the Steps node of `main`, one StepGroup node per level and one for the final pod,
  and per pod a Retry node and its Pod node (more Pod nodes when attempts are retried);
- dag form: the DAG node, a TaskGroup node per task that runs a chunk of pods, and per pod a
  Retry node and its Pod node;
every node listing the nodes that follow it (`children`).
The pod's output parameters are held twice, on the Pod node and on its Retry node (Argo copies
the last attempt's outputs up).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from dataclasses import dataclass

MAX_WORKFLOW_SIZE = 1 << 20  # packer.go getMaxWorkflowSize, env MAX_WORKFLOW_SIZE
# A metrics line as a level pod writes it (workload/metrics.py; about 415 bytes with realistic
# figures): the output parameter both nodes of a pod hold.
METRICS_EXAMPLE = json.dumps(
    {
        "bytes_in": 29_360_128,
        "bytes_out": 29_101_466,
        "compute_s": 0.2113,
        "finished_at": 1796101240.912,
        "index": 12345,
        "inputs": ["l1/98760.parquet", "l1/98761.parquet"],
        "level": 1,
        "op": "merge",
        "output": "l2/12345.parquet",
        "peak_rss_mb": 231.5,
        "process_started_at": 1796101239.27,
        "read_s": 0.1862,
        "requests_in": 6,
        "rows_in": 3_000_000,
        "rows_out": 3_000_000,
        "step": "process",
        "total_s": 0.7531,
        "write_s": 0.2987,
    },
    sort_keys=True,
)
WORKFLOW_NAME = "process-data-x7k2p"  # generateName "process-data-" plus Argo's 5 characters
EPOCH = 1796083200  # 2026-12-01T00:00:00Z, the day the model's times fall on (_time)


@dataclass(frozen=True)
class Size:
    nodes: int
    raw_bytes: int  # status.nodes as JSON
    compressed_bytes: int  # status.compressedNodes (gzip, base64)
    spec_bytes: int  # the rest of the object (spec, metadata), as rendered

    @property
    def total_bytes(self) -> int:
        """What the controller compares with MAX_WORKFLOW_SIZE once nodes are compressed."""
        return self.spec_bytes + self.compressed_bytes

    @property
    def fits(self) -> bool:
        return self.spec_bytes + self.raw_bytes <= MAX_WORKFLOW_SIZE or (
            self.total_bytes <= MAX_WORKFLOW_SIZE
        )


def _id(n: int) -> str:
    # Node ids are the workflow name and a 32-bit FNV-1a hash of the node's name: as random
    # as real ones to gzip (a sequence would compress better than real status does).
    h = 2166136261
    for byte in n.to_bytes(8, "little"):
        h = ((h ^ byte) * 16777619) % 4294967296
    return f"{WORKFLOW_NAME}-{h}"


def _metrics(rng: random.Random, level: int, i: int, fan_in: int, created: float) -> str:
    """A level pod's metrics line with figures that vary as real ones do, for a pod created
    `created` seconds into the model's day: its process starts a few seconds later."""
    rows = rng.randrange(2_900_000, 3_100_000)
    started = EPOCH + created + round(rng.uniform(2.0, 8.0), 3)
    total = round(rng.uniform(0.6, 1.2), 4)
    value = json.loads(METRICS_EXAMPLE) | {
        "bytes_in": rows * 9 + rng.randrange(1 << 20),
        "bytes_out": rows * 9 + rng.randrange(1 << 20),
        "compute_s": round(rng.uniform(0.1, 0.4), 4),
        "index": i,
        "inputs": [f"l{level}/{i * fan_in + j}.parquet" for j in range(fan_in)],
        "level": level,
        "output": f"l{level + 1}/{i}.parquet",
        "peak_rss_mb": round(rng.uniform(200, 260), 1),
        "read_s": round(rng.uniform(0.1, 0.3), 4),
        "rows_in": rows,
        "rows_out": rows,
        "total_s": total,
        "write_s": round(rng.uniform(0.2, 0.4), 4),
        "process_started_at": round(started, 3),
        "finished_at": round(started + 1.5 + total, 3),  # 1.5 s: the interpreter and imports
    }
    return json.dumps(value, sort_keys=True)


def _time(second: float) -> str:
    s = int(second)
    return f"2026-12-01T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"


def _node(n: int, name: str, kind: str, template: str, start: float, **fields) -> dict:
    node = {
        "id": _id(n),
        "name": name,
        "displayName": name.rsplit(".", 1)[-1],
        "type": kind,
        "templateName": template,
        "templateScope": "local/" + WORKFLOW_NAME,
        "phase": "Succeeded",
        "boundaryID": _id(1),
        "startedAt": _time(start),
        "finishedAt": _time(start + 40),
        "progress": "1/1",
        "resourcesDuration": {"cpu": int(start) % 97 + 20, "memory": int(start) % 89 + 40},
    }
    return node | {k: v for k, v in fields.items() if v}


def _level(
    rng: random.Random,
    ids,
    level: int,
    pods: int,
    *,
    final: bool,
    fan_in: int,
    form: str,
    attempts: float,
    outputs: bool,
    chunk: int = 1,
) -> list[dict]:
    """One level's nodes: its StepGroup (steps form) or, when a DAG task runs a chunk of pods,
    a TaskGroup per task, each listing its pods' nodes; then per pod a Retry node and its Pod
    nodes. A pod's last node lists the node that follows it (the next step group, or the task
    depending on it), as Argo's `children` draw the graph."""
    template = "merge-data" if final else "process-data"
    retries = [next(ids) for _ in range(pods)]
    out = []
    if form == "steps":
        name = f"{WORKFLOW_NAME}[{level - 1}]"
        out.append(_node(next(ids), name, "StepGroup", "", 0.0, children=[_id(r) for r in retries]))
    elif chunk > 1 and not final:
        for first in range(0, pods, chunk):
            members = [_id(r) for r in retries[first : first + chunk]]
            name = f"{WORKFLOW_NAME}.l{level}-{first}-{first + chunk - 1}"
            out.append(_node(next(ids), name, "TaskGroup", template, 0.0, children=members))
    retried = 0.0
    for i, retry in enumerate(retries):
        if form == "steps":
            task = "merge-data" if final else f"process-data-l{level}({i}:{i})"
            name = f"{WORKFLOW_NAME}[{level - 1}].{task}"
        elif final:
            name = f"{WORKFLOW_NAME}.merge-data"
        elif chunk > 1:
            first = i - i % chunk
            name = f"{WORKFLOW_NAME}.l{level}-{first}-{first + chunk - 1}({i % chunk}:{i})"
        else:
            name = f"{WORKFLOW_NAME}.l{level}-{i}"
        start = level * 600 + rng.uniform(0, 600)
        params = {"file_number": str(i), "level": str(level), "cpu": "1", "memory": "2Gi"}
        if not final:
            params["pods"] = str(pods)  # --level-pods
        inputs = {"parameters": [{"name": k, "value": v} for k, v in params.items()]}
        retried += attempts - 1
        tries = 1 + int(retried)
        retried -= int(retried)
        held: dict = {"exitCode": "0"}
        if outputs or final:  # the final pod's summary is always an output
            line = _metrics(rng, level, i, fan_in, start + (tries - 1) * 30)  # the last attempt's
            held["parameters"] = [{"name": "metrics", "value": line}]
        pod_ids = [next(ids) for _ in range(tries)]
        children = [_id(c) for c in pod_ids]
        out.append(
            _node(
                retry,
                name,
                "Retry",
                template,
                start,
                inputs=inputs,
                outputs=held,
                children=children,
            )
        )
        following = [] if final else [_id(next(ids))]
        for t, pod in enumerate(pod_ids):
            host = f"cn-hangzhou.10.0.{rng.randrange(256)}.{rng.randrange(256)}"
            out.append(
                _node(
                    pod,
                    f"{name}({t})",
                    "Pod",
                    template,
                    start + t * 30,
                    inputs=inputs,
                    outputs=held,
                    hostNodeName=host,
                    taskResultSynced=True,
                    children=following if t == tries - 1 else None,
                )
            )
    return out


@dataclass(frozen=True)
class _Shape:
    """How every level's nodes look (see _level)."""

    fan_in: int
    form: str
    attempts: float
    outputs: bool
    chunk: int


def _levels(
    pods_per_level: list[int], shape: _Shape, *, most: int | None = None, seed: int = 0
) -> list[tuple[int, list[dict]]]:
    """(pods, nodes) of each level in turn, the nodes of at most `most` of its pods."""
    rng, ids = random.Random(seed), iter(range(2, 1 << 62))
    out = []
    for level, pods in enumerate(pods_per_level, 1):
        modelled = pods if most is None else min(pods, most)
        listed = _level(
            rng,
            ids,
            level,
            modelled,
            final=level == len(pods_per_level),
            fan_in=shape.fan_in,
            form=shape.form,
            attempts=shape.attempts,
            outputs=shape.outputs,
            chunk=shape.chunk,
        )
        out.append((pods, listed))
    return out


def nodes(
    pods_per_level: list[int],
    *,
    fan_in: int,
    form: str,
    attempts: float = 1.0,
    outputs: bool = True,
    chunk: int = 1,
    seed: int = 0,
) -> list[dict]:
    """The nodes of a finished run with these pods per level (the last level is the final
    pod's, one pod), in `form` "steps" or "dag"; `attempts` Pod nodes per pod on average;
    `outputs`: the level pods hold their metrics as an output parameter."""
    shape = _Shape(fan_in, form, attempts, outputs, chunk)
    out = [_node(1, WORKFLOW_NAME, "Steps" if form == "steps" else "DAG", "main", 0.0)]
    for _, listed in _levels(pods_per_level, shape, seed=seed):
        out += listed
    return out


SAMPLE_PODS = 256  # pods of a level modelled node by node; the rest scaled from them


def _encoded(listed: list[dict]) -> tuple[int, int]:
    raw = json.dumps({n["id"]: n for n in listed}, separators=(",", ":")).encode()
    return len(raw), len(base64.b64encode(gzip.compress(raw, compresslevel=6)))


def size(
    pods_per_level: list[int],
    *,
    fan_in: int,
    form: str,
    spec_bytes: int,
    attempts: float = 1.0,
    outputs: bool = True,
    chunk: int = 1,
) -> Size:
    """The Workflow's size by the model: its nodes raw and compressed as the controller does.
    A level of more than SAMPLE_PODS pods is modelled on its first SAMPLE_PODS and scaled (its
    nodes differ only in numbers; gzip's 32 KiB window sees a few dozen nodes at a time)."""
    if sum(pods_per_level) <= SAMPLE_PODS:
        listed = nodes(
            pods_per_level,
            fan_in=fan_in,
            form=form,
            attempts=attempts,
            outputs=outputs,
            chunk=chunk,
        )
        return Size(len(listed), *_encoded(listed), spec_bytes)
    shape = _Shape(fan_in, form, attempts, outputs, chunk)
    count, raw, packed = 1, 0.0, 0.0
    group = 1 if form == "steps" else 0  # a level's StepGroup, not scaled
    for pods, listed in _levels(pods_per_level, shape, most=SAMPLE_PODS):
        r, c = _encoded(listed)
        scale = pods / min(pods, SAMPLE_PODS)
        count += group + round((len(listed) - group) * scale)
        raw, packed = raw + r * scale, packed + c * scale
    return Size(count, round(raw), round(packed), spec_bytes)
