"""What both pods read: how many input files there are, and their opened, schema-checked inputs.

The count of level-1 files comes from the generator's manifest (validated: a manifest that
undercounts would make the tree silently leave data out) or, without one, from a listing of l1
whose names must run 0..N-1 without a gap.
"""

from __future__ import annotations

import re

import pyarrow as pa

from . import layout, schema
from .errors import DataError
from .settings import Settings
from .storage import ParquetInput, Store

OPENING_THREADS = 8  # inputs on an object store opened at once (each: one GET of its footer)

_INPUT_NAME = re.compile(r"(\d+)\.parquet")


def check_manifest(manifest: object, where: str) -> dict:
    """The manifest's shape, checked before anything trusts it."""
    if not isinstance(manifest, dict):
        raise DataError(f"{where} is not a JSON object")
    files = manifest.get("files")
    if not isinstance(files, int) or isinstance(files, bool) or files < 1:
        raise DataError(f"{where}: 'files' must be an integer >= 1, got {files!r}")
    per_file = manifest.get("rows_per_file")
    if per_file is not None and (
        not isinstance(per_file, list)
        or len(per_file) != files
        or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in per_file)
    ):
        raise DataError(f"{where}: 'rows_per_file' must list {files} row counts >= 0")
    return manifest


def read_manifest(store: Store) -> dict | None:
    manifest = store.read_json(layout.MANIFEST, missing=None)
    return None if manifest is None else check_manifest(manifest, store.describe(layout.MANIFEST))


def input_files(store: Store, manifest: dict | None = None) -> int:
    """Files at level 1: from the manifest, else by listing l1 (names 0..N-1, no gap). Deeper
    levels follow from the fan-in (layout.files_at)."""
    if manifest is not None:
        return manifest["files"]
    numbers = sorted(
        int(m.group(1)) for n in store.listdir("l1") if (m := _INPUT_NAME.fullmatch(n))
    )
    if not numbers:
        raise DataError(f"no input files under {store.describe('l1')}")
    for expected, found in enumerate(numbers):
        if found != expected:
            raise DataError(
                f"missing input {store.describe(layout.level_file(1, expected))}: l1 holds "
                f"{len(numbers)} files numbered up to {numbers[-1]}"
            )
    return len(numbers)


def check_no_extra_input(store: Store, files: int) -> None:
    """The manifest's count is the whole input: no file numbered `files` exists. One request,
    made by the last pod of level 1 (and by a final pod that reads level 1)."""
    rel = layout.level_file(1, files)
    if store.exists(rel):
        raise DataError(
            f"{store.describe(layout.MANIFEST)} says {files} files but "
            f"{store.describe(rel)} exists: the manifest undercounts the input"
        )


def open_inputs(
    store: Store, rels: list[str], expected: pa.Schema, settings: Settings
) -> list[ParquetInput]:
    """Open every input (footers only) and check its schema before anything is written.

    On an object store the inputs are opened in parallel, each with one request, and each
    starts fetching its first data at once; their read windows (the read_window setting each
    at most, read_budget in all) shrink with their number (storage.readahead). When several
    fail, the first input's error is the one reported, as if they had been opened one after
    another."""
    window, budget = settings.read_window, settings.read_budget
    if store.is_local or len(rels) < 2:
        opened = [store.open_parquet(rel, window) for rel in rels]
    else:
        opened = _open_in_parallel(store, rels, window, budget)
    for one in opened:
        if not one.schema.remove_metadata().equals(expected):
            raise DataError(
                f"schema drift: {one.what} has ({schema.describe(one.schema)}); "
                f"expected ({schema.describe(expected)})"
            )
    return opened


def _open_in_parallel(
    store: Store, rels: list[str], window: int, budget: int
) -> list[ParquetInput]:
    import threading

    results: list[ParquetInput | None] = [None] * len(rels)
    errors: list[BaseException | None] = [None] * len(rels)
    pending = iter(range(len(rels)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(pending, None)
            if i is None:
                return
            try:
                results[i] = store.open_parquet(rels[i], window, inputs=len(rels), budget=budget)
            except BaseException as exc:  # re-raised below, in input order
                errors[i] = exc

    # daemon threads: a pod that fails must not wait at exit for a store that stopped answering
    threads = [
        threading.Thread(target=work, name="open-input", daemon=True)
        for _ in range(min(OPENING_THREADS, len(rels)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return [r for r in results if r is not None]
