"""python -m workload.batch render | validate | submit | run-local   (also `workload batch ...`)

render     write the Batch file of the tree (job definitions, chained array jobs) to stdout
validate   check Batch files offline against botocore's Batch model and Batch's limits
submit     register and submit a Batch file in order with boto3, chaining the returned job ids
run-local  run a Batch file's jobs here, pod by pod, each child with its array index
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .. import command


def parser() -> argparse.ArgumentParser:
    from .build import Options

    p = command.Parser(prog="workload batch", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=command.Parser)
    r = sub.add_parser("render", help="write the tree's Batch file to stdout")
    for f in fields(Options):
        flag = "--" + f.name.replace("_", "-")
        kind = command.integer(flag, 0) if isinstance(f.default, int) else str
        r.add_argument(flag, dest=f.name, type=kind, default=None, help=f"default {f.default!r}")
    r.add_argument("--plan", type=Path, help="a plan from `workload plan --json`")
    v = sub.add_parser("validate", help="check Batch files offline")
    v.add_argument("files", nargs="+", type=Path)
    s = sub.add_parser("submit", help="register and submit a Batch file with boto3")
    s.add_argument("file", type=Path)
    s.add_argument("--region", help="default: the AWS environment's")
    s.add_argument("--endpoint-url", help="default: $AWS_ENDPOINT_URL_BATCH or AWS's")
    x = sub.add_parser("run-local", help="run a Batch file's pods here, in order")
    x.add_argument("file", type=Path)
    x.add_argument("--volume", action="append", default=[], metavar="NAME=PATH")
    x.add_argument("--secret", action="append", default=[], metavar="VALUEFROM=VALUE")
    x.add_argument(
        "--parallelism", type=command.integer("--parallelism", 1), default=2, help="pods at once"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    def go() -> int:
        args = parser().parse_args(argv)
        return {"render": _render, "validate": _validate, "submit": _submit, "run-local": _run}[
            args.command
        ](args)

    return command.guard(go)


def _render(args: argparse.Namespace) -> int:
    from .build import Options, render

    planned = _plan(args.plan) if args.plan else {}
    given = {f.name: getattr(args, f.name) for f in fields(Options)}
    options = Options(**{**planned, **{k: v for k, v in given.items() if v is not None}})
    sys.stdout.write(json.dumps(render(options), indent=2) + "\n")
    return 0


def _plan(path: Path) -> dict:
    """The Options a plan fixes: the shape, the op, the pods' vCPU and memory."""
    from ..planner import read_plan

    plan = read_plan(path)
    return {
        **{name: plan[name] for name in ("files", "fan_in", "final_fan_in", "op")},
        "vcpus": plan["pod_cpu"],
        "memory_mib": plan["pod_memory_mb"],
    }


def _validate(args: argparse.Namespace) -> int:
    from .local import load
    from .model import problems

    bad = 0
    for path in args.files:
        found = problems(load(path))
        for line in found:
            print(f"{path}: {line}", file=sys.stderr)
        print(f"{path}: {'ok' if not found else f'{len(found)} problems'}")
        bad += bool(found)
    return 1 if bad else 0


def _submit(args: argparse.Namespace) -> int:
    try:
        import boto3
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError("submit needs boto3: pip install boto3") from None
    from .local import load
    from .submit import submit

    client = boto3.client("batch", region_name=args.region, endpoint_url=args.endpoint_url)
    submit(load(args.file), client)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..argo.local import describe_waves
    from .local import run_file

    waves = run_file(
        args.file,
        volumes=dict(command.pair(v, "--volume", "NAME=PATH") for v in args.volume),
        secrets=dict(
            command.pair(s, "--secret", "VALUEFROM=VALUE", secret=True) for s in args.secret
        ),
        parallelism=args.parallelism,
    )
    print("\n".join(describe_waves(waves)))
    return 0


if __name__ == "__main__":
    command.exit_now(main())
