"""One engine of one case in a fresh process: `python -m benchmarks.child SPEC_JSON`.

Setup first (imports, preparation), then the clock runs around work() only; then this process's
peak RSS (VmHWM, workload.metrics) and ONE JSON line on stdout. Nothing is checked here: the
parent checks the outputs afterwards, outside any timing (checks.py)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from workload.metrics import peak_rss_mb

from .engines import ENGINES, Spec


def main(argv: list[str]) -> int:
    spec = Spec(**json.loads(argv[0]))
    if spec.cpus:  # before any engine starts a thread pool (each sizes itself from this)
        os.sched_setaffinity(0, range(spec.cpus))
    work = ENGINES[spec.case][spec.engine].setup(spec)  # imports and setup: not timed
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    peak = max(peak_rss_mb(), result.pop("child_peak_rss_mb", 0.0))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, **result}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exception:
        traceback.print_exc()
        code = 1
    # Leave without interpreter teardown, as workload's pods do: Arrow's thread pools can abort
    # the process at exit (apache/arrow#34314) after the work is done and reported.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
