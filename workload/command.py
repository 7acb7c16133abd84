"""How every command line runs: one-line errors with their exit code, checked arguments, the
options every pod takes, and a clean exit. The pods and the `workload` CLI both build on it."""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Callable

from . import errors
from .errors import UsageError, WorkloadError, redact
from .metrics import log
from .settings import Settings, parse_storage_options

EXIT_CODES_HELP = (
    f"exit codes: 0 ok, {errors.EXIT_USAGE} bad arguments, {errors.EXIT_DATA} bad input data, "
    f"{errors.EXIT_INTERNAL} internal error (a bug), {errors.EXIT_NO_SPACE} no space for an "
    f"output, {errors.EXIT_TRANSIENT} transient storage failure (the only one worth a retry), "
    f"{errors.EXIT_PERMISSION} access denied, {errors.EXIT_CONFIG} bad configuration"
)


class _Help(argparse.HelpFormatter):
    """Shows an option's default unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == argparse.SUPPRESS:
            return text
        return f"{text} (default: {action.default})"


class Parser(argparse.ArgumentParser):
    """argparse with every option's default shown, and one line and exit 2 on bad usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        kwargs.setdefault("epilog", EXIT_CODES_HELP)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def integer(name: str, minimum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise UsageError(f"{name} must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise UsageError(f"{name} must be an integer >= {minimum}, got {value}")
        return value

    return parse


def number(name: str, minimum: float = 0.0) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise UsageError(f"{name} must be a finite number >= {minimum:g}, got {text}")
        return value

    return parse


UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
UNITS |= {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def quantity(name: str) -> Callable[[str], int]:
    """A byte count: 14000000, 14MB, 14M, 2Gi, 512Ki (decimal k/M/G/T, binary Ki/Mi/Gi/Ti, as
    Kubernetes writes quantities; a trailing B is allowed)."""

    def parse(text: str) -> int:
        body = text.strip().lower().removesuffix("b")
        digits = body.rstrip("kmgti")
        unit = body[len(digits) :]
        try:
            value = float(digits) * UNITS[unit]
        except (KeyError, ValueError):
            raise UsageError(f"{name} must be a size like 14MB or 2Gi, got {text!r}") from None
        if not math.isfinite(value) or value < 1:
            raise UsageError(f"{name} must be at least one byte, got {text!r}")
        return int(value)

    return parse


def pair(
    text: str, flag: str, form: str = "NAME=VALUE", *, secret: bool = False
) -> tuple[str, str]:
    """A `flag` value of the form NAME=VALUE; UsageError naming it (a secret's text never)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        shown = "a value without" if secret else repr(text)
        raise UsageError(f"{flag} expects {form}, got {shown}")
    return name, value


def op_name(text: str) -> str:
    """--op: a name from the ops registry or module:attribute (the op is resolved now)."""
    from . import ops

    try:
        ops.get(text)
    except WorkloadError as exc:
        raise UsageError(f"--op: {exc}") from None
    return text


def folder_exists(flag: str, path: str | None) -> None:
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise UsageError(f"{flag} {path!r}: its folder does not exist")


def pod_options(p: argparse.ArgumentParser, *, root_default: str = Settings.root) -> None:
    p.add_argument("--root", help=f"root path or URL (default: $WORKLOAD_ROOT or {root_default})")
    p.add_argument(
        "--op",
        type=op_name,
        help="merge or aggregate, or module:attribute of an op of your own "
        "(default: $WORKLOAD_OP or merge)",
    )
    p.add_argument(
        "--fan-in",
        type=integer("--fan-in", 2),
        help="inputs per level pod (default: $WORKLOAD_FAN_IN or 2)",
    )
    p.add_argument(
        "--run",
        help="the run's folder under the root for the levels above l1 and the result "
        "(default: $WORKLOAD_RUN, or none)",
    )
    p.add_argument("--metrics-file", help="also write the metrics JSON line here")
    p.add_argument(
        "--storage-options", help="JSON object of fsspec storage options (endpoint_url, key, ...)"
    )


def settings(args: argparse.Namespace, **defaults) -> Settings:
    """Settings from parsed options, then the environment, then `defaults`."""
    given = {
        "root": getattr(args, "root", None),
        "op": getattr(args, "op", None),
        "fan_in": getattr(args, "fan_in", None),
        "run": getattr(args, "run", None),
        "metrics_file": getattr(args, "metrics_file", None),
        "storage_options": parse_storage_options(getattr(args, "storage_options", None)),
    }
    return Settings.load(**{**defaults, **{k: v for k, v in given.items() if v is not None}})


def guard(fn: Callable[[], int | None]) -> int:
    """Run a command: expected failures print one line and return their exit code."""
    try:
        return fn() or 0
    except WorkloadError as exc:
        log(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug, not bad input: keep the trace, but never a secret
        if os.environ.get("WORKLOAD_DEBUG"):
            log(redact(traceback.format_exc()))
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
