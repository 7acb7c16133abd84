"""Which files a pod reads and writes: the l{L}/{i} naming of the peer sample, in Parquet.

    ROOT/l1/{i}.parquet          the input, i = 0..N-1 (plus l1/_manifest.json from the generator)
    ROOT/l{L+1}/{i}.parquet      written by level-L pod i from l{L}/{k*i} .. l{L}/{k*i+k-1}
    ROOT/result/                 written by the final pod
    ROOT/RUN/l{L+1}/, ROOT/RUN/result/   the same, for a named run (--run): runs on one input
                                 never share a file (an Argo run is named by its workflow)

A level whose file count is not a multiple of the fan-in k gives its last pod fewer inputs; a lone
input passes through. Everything here is pure arithmetic on counts, shared by the pods, the local
runner and the workflow builders so that they can never disagree on the shape of the tree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import UsageError

MANIFEST = "l1/_manifest.json"
RESULT_DIR = "result"
BY_KEY = "result/by_key.parquet"
BY_CATEGORY = "result/by_category.parquet"
SUMMARY = "result/summary.json"

# Process levels continue until a level has at most this many files; the final pod reads them
# all. With 128 inputs and fan-in 2 that is 128 -> 64 -> 32 -> 1, the case of the seed.
DEFAULT_FINAL_FAN_IN = 32


INPUT_DIR = "l1"
# A run's name is one path segment, and no folder the layout itself names. Argo's workflow names
# (RFC 1123 subdomains: lower-case letters, digits, "-" and ".") all qualify.
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")


def level_of(name: str) -> int | None:
    """The level whose files the folder `name` holds ("l3" -> 3), None for another name."""
    found = re.fullmatch(r"l(\d+)", name)
    return int(found.group(1)) if found else None


def is_derived_level(name: str) -> bool:
    """A level folder written by a run's pods (l2, l3, ...): not the input, l1."""
    return level_of(name) is not None and name != INPUT_DIR


def check_run(run: str) -> str:
    """`run` if it can name a run's folder ("" for none), else UsageError naming it."""
    if run and (not _RUN_NAME.fullmatch(run) or run == RESULT_DIR or level_of(run) is not None):
        raise UsageError(
            f"--run {run!r}: a run is named by letters, digits, '.', '_' and '-' (at most 253), "
            f"and not {RESULT_DIR!r} or a level's name"
        )
    return run


def run_path(run: str, rel: str) -> str:
    """Where `rel` (a layout path) lives for `run`: the input is shared, the rest is the run's."""
    if not run or rel == INPUT_DIR or rel.startswith(INPUT_DIR + "/"):
        return rel
    return f"{run}/{rel}" if rel else run


def result_file(name: str) -> str:
    return f"{RESULT_DIR}/{name}.parquet"


def level_file(level: int, index: int) -> str:
    return f"l{level}/{index}.parquet"


def pods(files: int, fan_in: int) -> int:
    """Pods needed to reduce `files` files with the given fan-in."""
    return math.ceil(files / fan_in)


def inputs(level: int, index: int, files: int, fan_in: int) -> list[str]:
    """The files that level-`level` pod `index` reads, when its level holds `files` files."""
    check_positive("fan-in", fan_in, minimum=2)
    check_positive("level", level, minimum=1)
    check_positive("file_number", index, minimum=0)
    if index >= pods(files, fan_in):
        raise UsageError(
            f"file_number {index} is beyond level {level}, which has {files} files "
            f"and so {pods(files, fan_in)} pods (0..{pods(files, fan_in) - 1})"
        )
    first = index * fan_in
    return [level_file(level, i) for i in range(first, min(first + fan_in, files))]


@dataclass(frozen=True)
class Plan:
    """The shape of the whole tree: files per level, the last one read by the final pod."""

    files: tuple[int, ...]  # files[0] is level 1 (the input); files[-1] is the final pod's input
    fan_in: int

    @property
    def levels(self) -> int:
        """Process levels (pods that write l2, l3, ...), not counting the final pod."""
        return len(self.files) - 1

    def pods(self, level: int) -> int:
        return pods(self.files[level - 1], self.fan_in)

    @property
    def final_level(self) -> int:
        return len(self.files)

    @property
    def final_count(self) -> int:
        return self.files[-1]


def plan(files: int, fan_in: int = 2, levels: int | None = None, final_fan_in: int | None = None):
    """Files per level for `files` inputs: reduce by `fan_in` until at most `final_fan_in` remain,
    or exactly `levels` times when that is given."""
    check_positive("files", files, minimum=1)
    check_positive("fan-in", fan_in, minimum=2)
    final_fan_in = DEFAULT_FINAL_FAN_IN if final_fan_in is None else final_fan_in
    check_positive("final-fan-in", final_fan_in, minimum=1)
    counts = [files]
    while (levels is None and counts[-1] > final_fan_in) or (
        levels is not None and len(counts) <= levels
    ):
        counts.append(pods(counts[-1], fan_in))
        if levels is None and counts[-1] == 1:
            break
    return Plan(tuple(counts), fan_in)


@dataclass(frozen=True)
class Shape:
    """The tree a rendered manifest or Batch file bakes in (their Options extend it)."""

    files: int = 128
    fan_in: int = 2
    final_fan_in: int = DEFAULT_FINAL_FAN_IN

    @property
    def plan(self) -> Plan:
        return plan(self.files, self.fan_in, final_fan_in=self.final_fan_in)


MAX_DAG_TASKS = 200  # Argo's v4 CRD: maxItems of a DAG template's tasks


def dag_chunk(plan: Plan) -> int:
    """Level pods per DAG task: 1 (a task per pod) when every pod and the final one fit in
    MAX_DAG_TASKS tasks, else the fewest consecutive pods per task that fit."""
    pods = [plan.pods(level) for level in range(1, plan.levels + 1)]
    chunk = 1
    while sum(math.ceil(n / chunk) for n in pods) + 1 > MAX_DAG_TASKS:
        chunk += 1
    return chunk


def dag_tasks(plan: Plan) -> int:
    """Tasks of the DAG form: its chunks of level pods and the final pod."""
    chunk = dag_chunk(plan)
    return sum(math.ceil(plan.pods(level) / chunk) for level in range(1, plan.levels + 1)) + 1


def files_at(level: int, input_files: int, fan_in: int) -> int:
    """How many files level `level` holds when level 1 holds `input_files`."""
    count = input_files
    for _ in range(level - 1):
        count = pods(count, fan_in)
    return count


def check_positive(name: str, value: int, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
