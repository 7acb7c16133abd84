"""Seeded input data at named scales, generated with workload.generate outside any timed region
and cached on disk between runs under DATA/<scale>/<dataset>/l1 (the tree's own layout, with the
generator's manifest), so every engine of every repeat reads the very same bytes.

A cached dataset is reused only when its stamp matches: the dataset's parameters, pyarrow's
version and a hash of the generator, writer and kernel code (the kernels compute the manifest's
expected checksum), so a change to how inputs or expectations are made regenerates them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

STAMP = "bench-stamp.json"


@dataclass(frozen=True)
class Dataset:
    """`files` input files of `rows` rows each over `keys` keys: workload's events."""

    name: str
    files: int
    rows: int
    keys: int
    seed: int = 0

    def paths(self, root: Path, count: int | None = None) -> list[Path]:
        return [root / "l1" / f"{i}.parquet" for i in range(self.files if count is None else count)]


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
    cases: tuple[str, ...]
    pair: Inputs | None = None  # pod_merge, pod_aggregate: one level-1 pod's two inputs
    final: Inputs | None = None  # the final pod's 32 inputs
    job: Inputs | None = None  # the whole job: every input
    # The job's --final-fan-in: small data needs a lower one to keep levels in the tree.
    job_final_fan_in: int | None = None
    rss: tuple[Inputs, ...] = ()  # pairs of growing size: pod memory vs input size
    s3: Inputs | None = None  # one pod's pair, uploaded to the S3 server

    def datasets(self, cases: list[str]) -> list[Dataset]:
        wanted: list[Inputs | None] = []
        if "pod_merge" in cases or "pod_aggregate" in cases:
            wanted.append(self.pair)
        wanted += [self.final if "final" in cases else None, self.job if "job" in cases else None]
        wanted += list(self.rss) if "rss" in cases else []
        wanted.append(self.s3 if "s3" in cases else None)
        return list(dict.fromkeys(i.dataset for i in wanted if i is not None))


def _pairs(sizes: tuple[int, ...], keys: int) -> tuple[Inputs, ...]:
    # Seeds differ per size (as in tests/test_memory.py) so no pair is a prefix of another.
    return tuple(Inputs(Dataset(f"pair-{n}", 2, n, keys, seed=n), 2) for n in sizes)


_SMALL = Dataset("events", files=32, rows=50_000, keys=10_000)
_SMALL_JOB = Dataset("job", files=16, rows=20_000, keys=5_000, seed=1)
_DEFAULT = Dataset("events", files=128, rows=1_000_000, keys=100_000)
_LARGE_PAIRS = _pairs((1_000_000, 2_000_000, 4_000_000, 8_000_000), keys=100_000)

SCALES: dict[str, Scale] = {
    # CI smoke: every case and engine on tiny data; its timings mean nothing.
    "small": Scale(
        "small",
        cases=("pod_merge", "pod_aggregate", "final", "job", "rss", "s3"),
        pair=Inputs(_SMALL, 2),
        final=Inputs(_SMALL, 32),
        job=Inputs(_SMALL_JOB, 16),
        job_final_fan_in=4,  # 16 -> 8 -> 4 -> result, a tree with levels like the real one
        rss=_pairs((20_000, 40_000), keys=10_000),
        s3=Inputs(_SMALL, 2),
    ),
    # The real shape: 128 files x 1M rows; the pod pair is files 0 and 1, the final pod reads
    # files 0..31, the job all 128 (128 -> 64 -> 32 -> result).
    "default": Scale(
        "default",
        cases=("pod_merge", "pod_aggregate", "final", "job", "s3"),
        pair=Inputs(_DEFAULT, 2),
        final=Inputs(_DEFAULT, 32),
        job=Inputs(_DEFAULT, 128),
        s3=Inputs(_DEFAULT, 2),
    ),
    # Memory: pairs of 1, 2, 4 and 8M rows per input; S3 on the 8M pair (several read windows).
    "large": Scale("large", cases=("rss", "s3"), rss=_LARGE_PAIRS, s3=_LARGE_PAIRS[-1]),
}


def dataset_root(data_dir: Path, scale: str, dataset: Dataset) -> Path:
    return data_dir / scale / dataset.name


def _code_hash() -> str:
    """The generator and the writer settings decide the input bytes; the kernels, the checksum
    in the manifest."""
    import workload.generate
    import workload.kernels.checksum
    import workload.schema
    import workload.storage.parquet

    digest = hashlib.sha256()
    modules = (
        workload.generate,
        workload.schema,
        workload.kernels.checksum,
        workload.storage.parquet,
    )
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _stamp(dataset: Dataset) -> dict:
    import pyarrow

    return {"dataset": asdict(dataset), "code": _code_hash(), "pyarrow": pyarrow.__version__}


def is_cached(root: Path, dataset: Dataset) -> bool:
    stamp = root / STAMP
    if not stamp.exists() or json.loads(stamp.read_text()) != _stamp(dataset):
        return False
    return all(p.exists() for p in dataset.paths(root)) and (root / "l1/_manifest.json").exists()


def prepare(data_dir: Path, scale: Scale, cases: list[str]) -> dict[Dataset, Path]:
    """Every dataset the cases need, generated unless cached; their roots."""
    from workload.generate import generate
    from workload.storage import open_store

    roots = {}
    for dataset in scale.datasets(cases):
        root = dataset_root(data_dir, scale.name, dataset)
        roots[dataset] = root
        if is_cached(root, dataset):
            log(f"data: {dataset.name} cached under {root}")
            continue
        log(
            f"data: generating {dataset.files} files x {dataset.rows:,} rows "
            f"({dataset.keys:,} keys, seed {dataset.seed}) under {root}"
        )
        shutil.rmtree(root, ignore_errors=True)
        generate(open_store(str(root)), dataset.files, dataset.rows, dataset.keys, dataset.seed)
        # Written last: an interrupted generation leaves no stamp and is redone.
        (root / STAMP).write_text(json.dumps(_stamp(dataset), indent=2) + "\n")
    return roots


def warm(paths: list[Path]) -> None:
    """Read files once so the first engine of a case is not the only one paying cold reads."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(8 << 20):
                pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
