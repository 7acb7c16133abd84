"""The `workload` console script, for people: generate | process | final | run | plan |
simulate | report | verify | batch | migrate | argo.

The pods own their command lines (workload/process.py, workload/final.py); this imports them and
is never imported by them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import command, errors, final, process, run_local
from .metrics import log

# `workload run` and `workload verify` share this default root; the pods default to /mnt/vol
# (the PVC of the manifests) unless WORKLOAD_ROOT or --root says otherwise.
LOCAL_ROOT = run_local.DEFAULT_ROOT


def parser() -> argparse.ArgumentParser:
    p = command.Parser(prog="workload", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=command.Parser)

    g = sub.add_parser("generate", help="write deterministic sample input under ROOT/l1")
    g.add_argument(
        "--root", default=None, help=f"root path or URL (default: $WORKLOAD_ROOT or {LOCAL_ROOT})"
    )
    _shape(g)
    g.add_argument(
        "--skew",
        type=command.number("--skew"),
        default=0.0,
        help="Zipf exponent of key popularity",
    )
    g.add_argument("--storage-options", help="JSON object of fsspec storage options")

    sub.add_parser("process", help="run one level pod (python -m workload.process)", add_help=False)
    sub.add_parser("final", help="run the final pod (python -m workload.final)", add_help=False)
    sub.add_parser("merge", help="the final pod under the seed's name", add_help=False)
    sub.add_parser(
        "batch", help="the tree as Batch jobs (python -m workload.batch)", add_help=False
    )
    sub.add_parser("argo", help="manifests: render, validate, submit, run-local", add_help=False)
    sub.add_parser(
        "outcome",
        help="a run's exit handler: record its outcome (python -m workload.outcome)",
        add_help=False,
    )

    r = sub.add_parser("run", help="run the whole tree locally, then verify")
    command.pod_options(r, root_default=LOCAL_ROOT)
    _shape(r)
    r.add_argument(
        "--workers", type=command.integer("--workers", 1), default=2, help="pods at once"
    )
    r.add_argument(
        "--levels",
        type=command.integer("--levels", 1),
        help="process levels (default: reduce until at most --final-fan-in files remain)",
    )
    r.add_argument(
        "--final-fan-in",
        type=command.integer("--final-fan-in", 1),
        default=None,
        help="files the final pod reads at most (default 32)",
    )
    r.add_argument("--regenerate", action="store_true", help="write the input again")
    r.add_argument("--timeline", help="write the run's pod timeline here (JSON; workload report)")

    n = sub.add_parser("plan", help="choose a run's shape for N files and predict its cost")
    n.add_argument("--files", type=command.integer("--files", 1), required=True)
    n.add_argument(
        "--file-bytes", type=command.quantity("--file-bytes"), required=True, help="e.g. 14MB"
    )
    n.add_argument(
        "--file-rows", type=command.integer("--file-rows", 1), help="(default: from the bytes)"
    )
    n.add_argument("--storage", default="oss", help="local | nas | oss | s3 (default oss)")
    n.add_argument("--pod-cpu", type=command.number("--pod-cpu", 0.1), default=1.0)
    n.add_argument(
        "--pod-memory", type=command.quantity("--pod-memory"), default=2**31, help="default 2Gi"
    )
    n.add_argument("--parallelism", type=command.integer("--parallelism", 1), default=64)
    n.add_argument(
        "--fan-in", type=command.integer("--fan-in", 2), help="(default: the planner chooses)"
    )
    n.add_argument(
        "--final-fan-in", type=command.integer("--final-fan-in", 1), default=32, help="default 32"
    )
    n.add_argument("--form", default="auto", help="auto | steps | dag")
    n.add_argument("--op", type=command.op_name, default="merge")
    n.add_argument("--json", action="store_true", help="print the plan as JSON")

    from . import simulate  # plan's options (-h and --json too), then the simulator's own

    m = sub.add_parser(
        "simulate",
        parents=[n],
        add_help=False,
        help="play the plan's run out event by event: per-level times, a pod timeline",
    )
    simulate.arguments(m)

    from . import report

    report.arguments(
        sub.add_parser(
            "report",
            help="where a finished run's time went, level by level (Argo status or a timeline)",
        )
    )

    g = sub.add_parser("migrate", help="convert Batch job definitions and jobs to an Argo Workflow")
    g.add_argument("file", help="a Batch file, or job definitions and submissions (JSON or YAML)")
    g.add_argument("--claim", default="pvc-oss", help="the PVC that stands for Batch's volumes")
    g.add_argument(
        "--secret", default="oss-credentials", help="the Secret that holds Batch's secrets' keys"
    )
    g.add_argument(
        "--lenient",
        action="store_true",
        help="list the fields that have no mapping in a comment instead of failing",
    )
    g.add_argument("--out", help="write the Workflow here (default: stdout)")

    v = sub.add_parser("verify", help="check ROOT/result against the generator's manifest")
    v.add_argument(
        "--root", default=None, help=f"root path or URL (default: $WORKLOAD_ROOT or {LOCAL_ROOT})"
    )
    v.add_argument("--run", help="the run whose result to check (its folder under the root)")
    v.add_argument("--storage-options", help="JSON object of fsspec storage options")
    return p


def _shape(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--files",
        type=command.integer("--files", 1),
        default=run_local.DEFAULT_FILES,
        help="input files",
    )
    p.add_argument(
        "--rows",
        type=command.integer("--rows", 0),
        default=run_local.DEFAULT_ROWS,
        help="rows per file",
    )
    p.add_argument(
        "--keys",
        type=command.integer("--keys", 1),
        default=run_local.DEFAULT_KEYS,
        help="distinct keys over all files",
    )
    p.add_argument(
        "--seed", type=command.integer("--seed", 0), default=0, help="seed of the generator"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pods = {"process": process.main, "final": final.main, "merge": final.main}
    if argv[:1] == ["outcome"]:  # a run's exit handler (workload/outcome.py)
        from .outcome import main as outcome

        return outcome(argv[1:])
    if argv[:1] and argv[0] in pods:
        return pods[argv[0]](argv[1:], prog=f"workload {argv[0]}")
    if argv[:1] == ["batch"]:  # its own parser (workload/batch/__main__.py)
        from .batch.__main__ import main as batch

        return batch(argv[1:])
    if argv[:1] == ["argo"]:  # python -m workload.argo, which needs the argo extra (hera)
        from .argo.__main__ import main as argo

        try:
            return argo(argv[1:])
        except ImportError as exc:
            if not (exc.name or "").startswith(("hera", "yaml")):
                raise
            log("error: `workload argo` needs hera: pip install 'workload[argo]'")
            return errors.EXIT_CONFIG

    def go() -> int:
        args = parser().parse_args(argv)
        commands = {
            "generate": _generate,
            "run": _run,
            "plan": _plan,
            "simulate": _simulate,
            "verify": _verify,
            "migrate": _migrate,
            "report": _report,
        }
        return commands[args.command](args)

    return command.guard(go)


def entry() -> None:
    """The `workload` console script."""
    command.exit_now(main())


def _local_settings(args: argparse.Namespace):
    return command.settings(args, root=os.environ.get("WORKLOAD_ROOT") or LOCAL_ROOT)


def _generate(args: argparse.Namespace) -> int:
    from .generate import generate

    settings = _local_settings(args)
    store = settings.store()
    manifest = generate(
        store,
        args.files,
        args.rows,
        args.keys,
        args.seed,
        args.skew,
        settings.row_group_rows,
        run_local.Progress("generate", args.files),
    )
    log(f"wrote {manifest['files']} files, {manifest['rows']:,} rows under {store}")
    return 0


def _run(args: argparse.Namespace) -> int:
    command.folder_exists("--timeline", args.timeline)
    settings = _local_settings(args)
    log(settings.describe())
    report = run_local.run(
        settings,
        files=args.files,
        rows=args.rows,
        keys=args.keys,
        seed=args.seed,
        workers=args.workers,
        levels=args.levels,
        final_fan_in=args.final_fan_in,
        regenerate=args.regenerate,
    )
    if args.timeline:
        from . import timeline

        timeline.dump(report["timeline"], args.timeline)
    print(run_local.format_report(report))
    return 0


def _request(args: argparse.Namespace, **extra):
    """`plan`'s and `simulate`'s options as a planner.Request."""
    from . import planner

    return planner.Request(
        files=args.files,
        file_bytes=args.file_bytes,
        file_rows=args.file_rows,
        storage=args.storage,
        pod_memory_mb=args.pod_memory / 2**20,
        pod_cpu=args.pod_cpu,
        parallelism=args.parallelism,
        fan_in=args.fan_in,
        final_fan_in=args.final_fan_in,
        form=args.form,
        op=args.op,
        **extra,
    )


def _plan(args: argparse.Namespace) -> int:
    import json

    from . import planner

    plan = planner.choose(_request(args))
    print(json.dumps(planner.as_dict(plan), indent=2) if args.json else planner.describe(plan))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from . import planner, simulate

    return simulate.main(planner.choose(_request(args, rates=simulate.rates(args))), args)


def _report(args: argparse.Namespace) -> int:
    from . import report

    return report.main(args)


def _migrate(args: argparse.Namespace) -> int:
    from .batch.migrate import convert, read

    text = convert(
        read(args.file), claim=args.claim, secret=args.secret, lenient=args.lenient
    ).to_yaml()
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .verify import verify

    store = _local_settings(args).store()
    where = store.describe("")  # the run's folder, if one is named
    problems = verify(store)
    for line in problems:
        log(f"mismatch: {line}")
    if problems:
        log(f"error: result under {where} differs from the manifest in {len(problems)} ways")
        return errors.EXIT_DATA
    print(f"ok: result under {where} matches the manifest")
    return 0
