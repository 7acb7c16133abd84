"""The op seam: what a level pod does to one aligned step, and what the final pod makes of it all.

An op is a small object (dask's Aggregation, cubed's reduction: chunk, combine, finalize) over
one op-agnostic tree (workload/process.py, workload/final.py):

    name               what `--op` and the manifests' `op` parameter say
    schema(level)      the shape of the files at `level` (level 1 holds the input events)
    sorted_by(level)   the columns those files are sorted by (written into their metadata)
    aligned_by(level)  the leading sort columns that a level pod's aligned walk steps by: no
                       group of the op straddles two steps
    combine(parts, level, cats) -> Step
                       one aligned step of a level-`level` pod: the rows of every input below a
                       common bound in, one output table out, and what it conserved
    combine_steps(steps, level, cats) -> Step   (optional)
                       several consecutive aligned steps at once, the same output as combining
                       them one by one (the pod groups steps of at least batch_rows rows: at
                       fan-in 2 every other step holds a few hundred rows, and a call costs more
                       than they do)
    final(level, cats, key_range) -> FinalState
                       the final pod's state over the files at `level`
    checks_manifest    whether `workload verify` can check its result against the generator's
                       manifest (the built-in ops' result is by_key and by_category)

A FinalState takes batches: summarize(batch) runs on the final pod's reader threads and touches
no shared state; absorb(piece) runs under the pod's lock; result() gives the result tables by
name (written as result/NAME.parquet) and the totals that go into summary.json. A state whose
`streaming` is true is fed aligned steps instead (by its `aligned_by` columns, one part per
input, None where an input has no rows in the step): step(parts) returns the result rows that
the step completes, written as they come, and the input rows behind each part.

`--op` takes a name from OPS or an import path "module:attribute" naming an Op object, so a
reduction of your own runs through the tree, the local runner and the manifests without editing
this package (tests/ops_distinct.py is one).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from ..errors import ConfigError
from ..kernels.categories import Categories


@dataclass
class Step:
    """One aligned step's output, and what it conserved: name -> (in, out), compared by the pod
    (sums modulo 2**64) before anything is published."""

    table: pa.Table
    conserved: dict[str, tuple[int, int]] = field(default_factory=dict)


class Piece(Protocol):
    @property
    def rows(self) -> int | None:  # input rows the batch stands for (None: not counted)
        ...


class FinalState(Protocol):
    def summarize(self, batch: pa.RecordBatch) -> Piece: ...
    def absorb(self, piece: Any) -> None: ...  # a piece this state's summarize made
    def result(self) -> tuple[dict[str, pa.Table], dict[str, Any]]: ...


class Op(Protocol):
    name: str
    checks_manifest: bool

    def schema(self, level: int) -> pa.Schema: ...
    def sorted_by(self, level: int) -> tuple[str, ...]: ...
    def aligned_by(self, level: int) -> tuple[str, ...]: ...
    def combine(self, parts: Sequence[pa.Table], level: int, cats: Categories) -> Step: ...
    def final(
        self, level: int, cats: Categories, key_range: tuple[int | None, int | None]
    ) -> FinalState: ...


def _builtin() -> dict[str, Op]:
    from .aggregate import AggregateOp
    from .merge import MergeOp

    return {"merge": MergeOp(), "aggregate": AggregateOp()}


OPS: dict[str, Op] = _builtin()


def get(name: str) -> Op:
    """The op called `name`, or the Op object at the import path "module:attribute"."""
    if name in OPS:
        return OPS[name]
    module, sep, attribute = name.partition(":")
    if not sep or not module or not attribute:
        raise ConfigError(f"unknown op {name!r}; expected one of {', '.join(OPS)} or module:attr")
    try:
        op = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"op {name!r} cannot be imported ({type(exc).__name__})") from None
    for needed in ("name", "schema", "sorted_by", "aligned_by", "combine", "final"):
        if not hasattr(op, needed):
            raise ConfigError(f"op {name!r} is not an Op: it has no {needed!r}")
    return op
