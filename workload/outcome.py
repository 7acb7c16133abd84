"""A run's exit handler: `workload outcome --root R --run NAME --status S [--clean]`.

Argo runs it once the workflow's pods are done (the manifests' onExit, argo/build.py), whatever
the outcome. It writes RUN/outcome.json: the run, Argo's status (Succeeded, Failed or Error),
whether its result's commit marker (result/summary.json) is there, and the levels it removed.
With --clean, once the run has succeeded and its marker is there, it removes the run's levels
above l1: they were only ever the next level's input. (The final pod checked its result against
its inputs before it wrote the marker; reading the result again would need its size in memory.) The
input (l1) is never touched; nor is anything when the run did not succeed, so a failed run's
levels stay for a look.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import command, layout
from .errors import UsageError
from .metrics import log
from .settings import Settings

OUTCOME = "outcome.json"
STATUSES = ("Succeeded", "Failed", "Error")  # {{workflow.status}} in an exit handler


def record(settings: Settings, status: str, *, clean: bool = False) -> dict:
    """Write the run's outcome; with `clean`, first remove a succeeded run's levels above l1."""
    if status not in STATUSES:
        raise UsageError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    store = settings.store()
    result = store.read_json(layout.SUMMARY, missing=None) is not None
    removed = []
    if clean and status == "Succeeded" and result:
        for name in store.listdir(""):
            if layout.is_derived_level(name):
                store.remove(name)
                removed.append(name)
    outcome = {"run": settings.run, "status": status, "result": result, "removed": removed}
    store.write_json(OUTCOME, outcome)
    return outcome


def parser(prog: str) -> argparse.ArgumentParser:
    p = command.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--status", required=True, help="the workflow's status: {{workflow.status}}")
    p.add_argument(
        "--clean",
        action="store_true",
        help="after a success, remove the run's levels above l1 (the input stays)",
    )
    command.pod_options(p)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "workload outcome") -> int:
    def go() -> None:
        args = parser(prog).parse_args(argv)
        settings = command.settings(args)
        log(f"outcome {record(settings, args.status, clean=args.clean)}")

    return command.guard(go)
