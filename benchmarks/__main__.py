"""python -m benchmarks run [--scale S] [--repeats N] [--output DIR] [--data DIR]
                        [--engines A,B] [--cases X,Y] [--timeout SECONDS]
python -m benchmarks report [--output DIR]"""

from __future__ import annotations

import argparse
import sys

from .settings import BenchSettings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="measure every case and engine, check, write results")
    run.add_argument("--scale", help="small (CI smoke), default, large ($BENCH_SCALE)")
    run.add_argument("--repeats", type=int, help="fresh processes per engine (default 5)")
    run.add_argument("--output", help="results folder (default benchmarks/results)")
    run.add_argument("--data", help="input cache folder (default ./data/bench)")
    run.add_argument("--engines", help="comma-separated engines (default: all)")
    run.add_argument("--cases", help="comma-separated cases (default: all of the scale)")
    run.add_argument("--timeout", type=int, help="seconds per child process (default 3600)")
    rep = sub.add_parser("report", help="rebuild results.md and the plots from results.csv")
    rep.add_argument("--output", help="results folder (default benchmarks/results)")
    rep.add_argument("--scale", help="only to pick the default folder (small: results-small)")
    args = parser.parse_args(argv)

    try:
        settings = BenchSettings.load(**{k: v for k, v in vars(args).items() if k != "command"})
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "report":
        from .report import build

        if not (settings.output_dir / "results.csv").exists():
            print(f"error: no results.csv under {settings.output_dir}", file=sys.stderr)
            return 2
        for path in build(settings.output_dir):
            print(f"wrote {path}")
        return 0
    from .run import main as run_main

    return run_main(settings)


if __name__ == "__main__":
    sys.exit(main())
