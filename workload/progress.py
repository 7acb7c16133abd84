"""A pod's watchdog: give up on a store that stopped answering, within a known budget.

Every storage request and every processed batch calls tick(). A pod's entry point arms the
watchdog; when nothing ticks for `budget` seconds (WORKLOAD_STALL_SECONDS, 120 by default) it
prints one line naming what it was waiting for and ends the process with 75, so the workflow
retries the pod. Client time-outs alone do not bound a pod: botocore's read time-out restarts
with every byte and every retry, and a store that accepted connections and never answered held
a pod about 420 s. Leaving is safe at any moment: nothing is published until it is complete.
"""

from __future__ import annotations

import os
import sys
import threading
import time

_last = time.monotonic()
_what = "storage"
_armed: threading.Thread | None = None


def tick(what: str | None = None) -> None:
    global _last, _what
    _last = time.monotonic()
    if what is not None:
        _what = what


def arm(budget: float, exit_code: int) -> None:
    """Start the watchdog thread (once per process)."""
    global _armed
    if _armed is not None or budget <= 0:
        return
    tick()

    def watch() -> None:
        while True:
            idle = time.monotonic() - _last
            if idle >= budget:
                from .errors import redact

                sys.stderr.write(
                    redact(
                        f"error: no progress for {budget:g} s (WORKLOAD_STALL_SECONDS) "
                        f"while waiting for {_what}\n"
                    )
                )
                sys.stderr.flush()
                os._exit(exit_code)
            time.sleep(min(1.0, budget - idle + 0.01))

    _armed = threading.Thread(target=watch, name="watchdog", daemon=True)
    _armed.start()
