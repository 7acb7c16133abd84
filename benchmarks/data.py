"""Seeded inputs at named scales, generated with workload.generate before anything is timed and
cached under DATA/<scale>/<dataset>/l1 (the tree's own layout, with the generator's manifest), so
every engine of every repeat reads the very same bytes. A cached dataset is reused only while its
stamp matches: its parameters, pyarrow's version and a hash of the generator, writer and kernel
code (the kernels compute the manifest's expected checksum)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

STAMP = "bench-stamp.json"
FAN_INS = (2, 4, 8, 16, 32, 64)  # the fan_in case's (workload.planner.FAN_INS)


@dataclass(frozen=True)
class Dataset:
    """`files` input files of `rows` rows each over `keys` keys: workload's events."""

    name: str
    files: int
    rows: int
    keys: int
    seed: int = 0


@dataclass(frozen=True)
class Inputs:
    """Files 0..count-1 of a dataset: what one measurement reads."""

    dataset: Dataset
    count: int

    @property
    def rows(self) -> int:
        return self.dataset.rows * self.count


@dataclass(frozen=True)
class Scale:
    name: str
    cases: dict[str, tuple[Inputs, ...]]  # case -> inputs, one run each
    job_final_fan_in: int | None = None  # small data needs a lower one to keep levels


def _pairs(*sizes: int, keys: int) -> tuple[Inputs, ...]:
    # Seeds differ per size (as in tests/test_memory.py) so no pair is a prefix of another.
    return tuple(Inputs(Dataset(f"pair-{n}", 2, n, keys, seed=n), 2) for n in sizes)


def _tree(
    events: Dataset, job: Inputs, sparse: Dataset, tiny: Dataset
) -> dict[str, tuple[Inputs, ...]]:
    """The pod pair is files 0 and 1, the final pod reads files 0..31 (of `events`, and of
    `sparse`, whose keys are too many for the final pod's dense slots); the fan_in case's pod
    reads files 0..k-1 at each fan-in k of FAN_INS the dataset has files for."""
    pair = (Inputs(events, 2),)
    return {
        "pod_merge": pair,
        "pod_aggregate": pair,
        "final": (Inputs(events, 32),),
        "final_10m": (Inputs(sparse, sparse.files),),
        "job": (job,),
        "pod_process": (Inputs(tiny, 2),),
        "s3": pair,
        "fan_in": tuple(Inputs(events, k) for k in FAN_INS if k <= events.files),
    }


_SMOKE = Dataset("events", files=32, rows=50_000, keys=10_000)
_DEFAULT = Dataset("events", files=128, rows=1_000_000, keys=100_000)
# More keys than ByKey.MAX_SLOTS (4M): the final pod streams by key.
_SMOKE_SPARSE = Dataset("events-sparse", files=8, rows=20_000, keys=5_000_000, seed=2)
_DEFAULT_SPARSE = Dataset("events-10m", files=32, rows=1_000_000, keys=10_000_000, seed=2)
_TINY = Dataset("tiny", files=2, rows=10, keys=10, seed=3)  # a pod's fixed cost
_LARGE = _pairs(1_000_000, 2_000_000, 4_000_000, 8_000_000, keys=100_000)
SCALES = {
    # CI: every case and engine on tiny data, its timings mean nothing; the job's tree is
    # 16 -> 8 -> 4 -> result, with levels like the real one.
    "smoke": Scale(
        "smoke",
        _tree(_SMOKE, Inputs(Dataset("job", 16, 20_000, 5_000, seed=1), 16), _SMOKE_SPARSE, _TINY)
        | {"rss": _pairs(20_000, 40_000, keys=10_000)},
        job_final_fan_in=4,
    ),
    # The real shape: 128 files of 1M rows; the job reads all 128 (128 -> 64 -> 32 -> result).
    "default": Scale("default", _tree(_DEFAULT, Inputs(_DEFAULT, 128), _DEFAULT_SPARSE, _TINY)),
    # Memory against input size; S3 on the 8M pair (several read windows).
    "large": Scale("large", {"rss": _LARGE, "s3": _LARGE[-1:]}),
}


def paths(root: Path, inputs: Inputs) -> list[Path]:
    return [root / "l1" / f"{i}.parquet" for i in range(inputs.count)]


def _stamp(dataset: Dataset) -> dict:
    import pyarrow

    import workload.generate
    import workload.kernels.checksum
    import workload.schema
    import workload.storage.parquet

    digest = hashlib.sha256()
    for module in (
        workload.generate,
        workload.schema,
        workload.kernels.checksum,
        workload.storage.parquet,
    ):
        digest.update(Path(module.__file__).read_bytes())
    code = digest.hexdigest()[:16]
    return {"dataset": asdict(dataset), "code": code, "pyarrow": pyarrow.__version__}


def prepare(data_dir: Path, scale: Scale, cases: list[str]) -> dict[Dataset, Path]:
    """Every dataset the cases need, generated unless cached; their roots."""
    from workload.generate import generate
    from workload.storage import open_store

    roots = {}
    for dataset in dict.fromkeys(i.dataset for c in cases for i in scale.cases[c]):
        root = roots[dataset] = data_dir / scale.name / dataset.name
        stamp = root / STAMP
        whole = Inputs(dataset, dataset.files)
        if (
            stamp.exists()
            and json.loads(stamp.read_text()) == _stamp(dataset)
            and all(p.exists() for p in [*paths(root, whole), root / "l1/_manifest.json"])
        ):
            log(f"data: {dataset.name} cached under {root}")
            continue
        log(f"data: generating {dataset} under {root}")
        shutil.rmtree(root, ignore_errors=True)
        generate(open_store(str(root)), dataset.files, dataset.rows, dataset.keys, dataset.seed)
        # Written last: an interrupted generation leaves no stamp and is redone.
        stamp.write_text(json.dumps(_stamp(dataset), indent=2) + "\n")
    return roots


def warm(files: list[Path]) -> None:
    """Read files once so the first engine of a case is not the only one paying cold reads."""
    for path in files:
        with open(path, "rb") as f:
            while f.read(8 << 20):
                pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
