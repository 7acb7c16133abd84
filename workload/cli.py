"""Command lines: the pods' argv contract and the `workload` console script for people.

Pods:   python -m workload.process <file_number> <level>   (image: python3 process.py ...)
        python -m workload.merge <first> <count>            (image: python3 merge.py 0 32)
People: workload generate | process | merge | run | verify
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from . import errors, progress
from .errors import EXIT_DATA, UsageError, WorkloadError, redact
from .metrics import emit, log
from .settings import OPS, Settings, parse_storage_options

EXIT_CODES_HELP = (
    f"exit codes: 0 ok, {errors.EXIT_USAGE} bad arguments, {errors.EXIT_DATA} bad input data, "
    f"{errors.EXIT_INTERNAL} internal error, {errors.EXIT_NO_SPACE} no space for an output, "
    f"{errors.EXIT_TRANSIENT} transient storage failure (the only one worth a retry), "
    f"{errors.EXIT_PERMISSION} access denied, {errors.EXIT_CONFIG} bad configuration"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 64, not argparse's usage dump and 2
        raise UsageError(f"{self.prog}: {message}")


def _integer(name: str, minimum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise UsageError(f"{name} must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise UsageError(f"{name} must be an integer >= {minimum}, got {value}")
        return value

    return parse


def _number(name: str, minimum: float = 0.0) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise UsageError(f"{name} must be a finite number >= {minimum:g}, got {text}")
        return value

    return parse


def _folder_exists(flag: str, path: str | None) -> None:
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise UsageError(f"{flag} {path!r}: its folder does not exist")


def _pod_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", help="root path or URL (default: $WORKLOAD_ROOT or /mnt/vol)")
    p.add_argument("--op", choices=OPS, help="merge (default) or aggregate")
    p.add_argument("--fan-in", type=_integer("--fan-in", 2), help="inputs per pod (default 2)")
    p.add_argument("--metrics-file", help="also write the metrics JSON line here")
    p.add_argument(
        "--storage-options", help="JSON object of fsspec/pyarrow storage options (endpoint, ...)"
    )


def _settings(args: argparse.Namespace, **defaults) -> Settings:
    given = {
        "root": getattr(args, "root", None),
        "op": getattr(args, "op", None),
        "fan_in": getattr(args, "fan_in", None),
        "metrics_file": getattr(args, "metrics_file", None),
        "storage_options": parse_storage_options(getattr(args, "storage_options", None)),
    }
    return Settings.load(**{**defaults, **{k: v for k, v in given.items() if v is not None}})


def _guard(fn: Callable[[], int | None]) -> int:
    """Run a command: expected failures print one line and return their exit code."""
    try:
        return fn() or 0
    except WorkloadError as exc:
        log(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug, not bad input: keep the trace, but never a secret
        log(redact(traceback.format_exc()) if os.environ.get("WORKLOAD_DEBUG") else "")
        log(f"error: internal failure: {redact(f'{type(exc).__name__}: {exc}')}")
        return errors.EXIT_INTERNAL


def exit_now(code: int) -> None:
    """Flush and leave without interpreter teardown.

    Arrow's native thread pools can abort the process while Python tears them down at exit
    ("terminate called without an active exception", apache/arrow#34314), turning a pod that
    finished its work into a failed one. All output is flushed and every file closed by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def entry() -> None:
    """The `workload` console script."""
    exit_now(main())


# -- pods ------------------------------------------------------------------------------------
def process_parser(prog: str = "python -m workload.process") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Level pod: merge fan-in files of level L into one file of level L+1.",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument(
        "file_number",
        nargs="?",
        help="pod index within its level (default: $AWS_BATCH_JOB_ARRAY_INDEX, for array jobs)",
    )
    p.add_argument("level", nargs="?", help="level to read (1 reads the input files)")
    _pod_options(p)
    return p


def _pod_numbers(args: argparse.Namespace) -> tuple[int, int]:
    # Batch Compute array jobs pass the index in the environment: `process.py <level>` is valid.
    if args.level is None:
        index = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
        if args.file_number is None or index is None:
            raise UsageError(
                "usage: process <file_number> <level> (file_number may come from "
                "AWS_BATCH_JOB_ARRAY_INDEX)"
            )
        args.file_number, args.level = index, args.file_number
    return _integer("file_number")(args.file_number), _integer("level")(args.level)


def process_main(
    argv: Sequence[str] | None = None, prog: str = "python -m workload.process"
) -> int:
    def go() -> None:
        from .process import process

        args = process_parser(prog).parse_args(argv)
        file_number, level = _pod_numbers(args)
        settings = _settings(args)
        log(settings.describe())
        progress.arm(settings.stall_seconds, errors.EXIT_TRANSIENT)
        emit(process(settings, file_number, level), settings.metrics_file)

    return _guard(go)


def merge_parser(prog: str = "python -m workload.merge") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Final pod: combine files first..first+count-1 of the "
        "deepest level into result/.",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("first", type=_integer("first"), help="first file index (the seed passes 0)")
    p.add_argument("count", type=_integer("count"), help="how many files to read")
    p.add_argument("--level", type=_integer("--level"), help="level to read (default: deepest)")
    p.add_argument("--summary-file", help="also write result/summary.json's content here")
    p.add_argument(
        "--partial",
        action="store_true",
        help="allow first/count to cover only part of the level (the result is partial)",
    )
    _pod_options(p)
    return p


def merge_main(argv: Sequence[str] | None = None, prog: str = "python -m workload.merge") -> int:
    def go() -> None:
        from .merge import merge

        args = merge_parser(prog).parse_args(argv)
        _folder_exists("--summary-file", args.summary_file)
        settings = _settings(args)
        log(settings.describe())
        progress.arm(settings.stall_seconds, errors.EXIT_TRANSIENT)
        record = merge(
            settings, args.first, args.count, args.level, args.summary_file, partial=args.partial
        )
        emit(record, settings.metrics_file)

    return _guard(go)


# -- people ----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    from . import local

    parser = _Parser(
        prog="workload",
        description=__doc__.split("\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="write deterministic sample input under ROOT/l1")
    g.add_argument("--root", default=None)
    g.add_argument("--files", type=_integer("--files", 1), default=local.DEFAULT_FILES)
    g.add_argument(
        "--rows", type=_integer("--rows", 0), default=local.DEFAULT_ROWS, help="per file"
    )
    g.add_argument("--keys", type=_integer("--keys", 1), default=local.DEFAULT_KEYS)
    g.add_argument("--seed", type=_integer("--seed", 0), default=0)
    g.add_argument(
        "--skew", type=_number("--skew"), default=0.0, help="Zipf exponent of key popularity"
    )
    g.add_argument("--storage-options")

    sub.add_parser(
        "process", help="run one level pod (same as python -m workload.process)", add_help=False
    )
    sub.add_parser(
        "merge", help="run the final pod (same as python -m workload.merge)", add_help=False
    )

    r = sub.add_parser("run", help="run the whole tree locally, then verify")
    _pod_options(r)
    r.add_argument("--files", type=_integer("--files", 1), default=local.DEFAULT_FILES)
    r.add_argument(
        "--rows", type=_integer("--rows", 0), default=local.DEFAULT_ROWS, help="per file"
    )
    r.add_argument("--keys", type=_integer("--keys", 1), default=local.DEFAULT_KEYS)
    r.add_argument("--seed", type=_integer("--seed", 0), default=0)
    r.add_argument("--workers", type=_integer("--workers", 1), default=2)
    r.add_argument(
        "--levels",
        type=_integer("--levels", 1),
        help="process levels (default: reduce until at most --final-fan-in files remain)",
    )
    r.add_argument("--final-fan-in", type=_integer("--final-fan-in", 1), default=None)
    r.add_argument("--regenerate", action="store_true")

    v = sub.add_parser("verify", help="check ROOT/result against the generator's manifest")
    v.add_argument("--root", default=None)
    v.add_argument("--storage-options")

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["process"]:
        return process_main(argv[1:], prog="workload process")
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:], prog="workload merge")

    def go() -> int:
        args = parser.parse_args(argv)
        if args.command == "generate":
            return _generate(args)
        if args.command == "run":
            return _run(args)
        return _verify(args)

    return _guard(go)


def _generate(args: argparse.Namespace) -> int:
    from .generate import generate
    from .local import Progress
    from .storage import open_store

    settings = _settings(args)
    store = open_store(settings.root, settings.storage_options)
    manifest = generate(
        store,
        args.files,
        args.rows,
        args.keys,
        args.seed,
        args.skew,
        settings.row_group_rows,
        Progress("generate", args.files),
    )
    log(f"wrote {manifest['files']} files, {manifest['rows']:,} rows under {store}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from . import local

    root = os.environ.get("WORKLOAD_ROOT") or local.DEFAULT_ROOT
    settings = _settings(args, root=root)
    log(settings.describe())
    report = local.run(
        settings,
        args.files,
        args.rows,
        args.keys,
        args.seed,
        args.workers,
        args.levels,
        args.final_fan_in,
        args.regenerate,
    )
    print(local.format_report(report))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .storage import open_store
    from .verify import verify

    settings = _settings(args)
    store = open_store(settings.root, settings.storage_options)
    problems = verify(store)
    for line in problems:
        log(f"mismatch: {line}")
    if problems:
        log(f"error: result under {store} differs from the manifest in {len(problems)} ways")
        return EXIT_DATA
    print(f"ok: result under {store} matches the manifest")
    return 0
