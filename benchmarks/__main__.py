"""python -m benchmarks run [--scale S] [--repeats N] [--output DIR] [--data DIR]
                        [--engines A,B] [--cases X,Y] [--cpus 1,2] [--timeout SECONDS]
python -m benchmarks report [--output DIR] [--scale S]"""

from __future__ import annotations

import argparse
import sys

from . import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    measure = sub.add_parser("run", help="measure every case and engine, check, write results")
    measure.add_argument("--scale", help="smoke (CI), default, large ($BENCH_SCALE)")
    measure.add_argument("--repeats", type=int, help="fresh processes per engine (default 5)")
    measure.add_argument("--data", help="input cache folder (default ./data/bench)")
    measure.add_argument("--engines", help="comma-separated engines (default: all)")
    measure.add_argument("--cases", help="comma-separated cases (default: all of the scale)")
    measure.add_argument("--cpus", help="comma-separated CPU counts to measure at (default 1,2)")
    measure.add_argument("--timeout", type=int, help="seconds per child process (default 3600)")
    rebuild = sub.add_parser("report", help="rebuild results.md and the plots from results.csv")
    rebuild.add_argument("--scale", help="only to pick the default folder (smoke: DATA/smoke)")
    for command in (measure, rebuild):
        command.add_argument("--output", help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    try:
        settings = harness.BenchSettings.load(**vars(args))
    except harness.SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        return harness.main(settings)
    from .report import build

    if not (settings.output_dir / "results.csv").exists():
        print(f"error: no results.csv under {settings.output_dir}", file=sys.stderr)
        return 2
    for path in build(settings.output_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
