"""One typed settings object. Each field can come from the command line, else from an environment
variable named WORKLOAD_<FIELD>, else from its default; pods print it (secrets masked) at start."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, UsageError, redact, register_secrets

ENV_PREFIX = "WORKLOAD_"


@dataclass(frozen=True)
class Settings:
    root: str = "/mnt/vol"
    op: str = "merge"
    fan_in: int = 2
    # The run's own folder under root for every level above l1 and the result (layout.run_path);
    # "" for none. Argo runs pass their workflow's name, so concurrent runs never collide.
    run: str = ""
    # Storage options for fsspec/pyarrow (endpoint_url, key, secret, region, ...), as JSON.
    storage_options: dict[str, Any] = field(default_factory=dict)
    metrics_file: str | None = None
    # Rows per record batch while streaming: bounds memory per input.
    batch_rows: int = 65_536
    # Rows per Parquet row group in every file written.
    row_group_rows: int = 262_144
    # Bytes fetched per ranged GET when reading from an object store (one coalesced window).
    read_window: int = 32 * 2**20
    # Bytes all of a pod's read windows hold together on an object store (storage.readahead);
    # `workload plan` raises it where the pods' memory allows and request rates need it.
    read_budget: int = 64 * 2**20  # storage.readahead.READ_AHEAD_BUDGET (not imported: pyarrow)
    # A pod gives up (exit 75) after this many seconds without progress from its storage.
    stall_seconds: float = 120.0
    # A temporary or multipart upload left by a dead writer of the same output is removed once
    # it is this old (and, for temporaries, no live process holds its lock).
    stale_seconds: float = 300.0

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults < environment < explicit overrides (None means "not given")."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        from . import layout, ops

        ops.get(self.op)  # a name from ops.OPS, or module:attribute; ConfigError otherwise
        layout.check_run(self.run)
        if self.fan_in < 2:
            raise ConfigError(f"fan-in must be >= 2, got {self.fan_in}")
        for name in ("batch_rows", "row_group_rows", "read_window", "read_budget"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env(name)} must be >= 1, got {getattr(self, name)}")
        for name in ("stall_seconds", "stale_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{_env(name)} must be a number >= 0, got {value}")
        if self.metrics_file:
            folder = os.path.dirname(os.path.abspath(self.metrics_file))
            if not os.path.isdir(folder):
                raise UsageError(f"--metrics-file {self.metrics_file!r}: no folder {folder!r}")
        if not isinstance(self.storage_options, dict):
            raise ConfigError("storage options must be a JSON object")
        register_secrets(self.storage_options)

    def store(self):
        """The Store of `root`, with these settings' storage options."""
        from .storage import open_store

        return open_store(
            self.root, self.storage_options, stale_seconds=self.stale_seconds, run=self.run
        )

    def describe(self) -> str:
        shown = dataclasses.asdict(self)
        shown["storage_options"] = {k: "***" for k in self.storage_options}
        return redact("settings " + json.dumps(shown, sort_keys=True))


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    try:
        if "dict" in kind:
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        if kind.startswith("int"):
            return int(raw, 10)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        shown = "<hidden: not a JSON object>" if "dict" in kind else repr(raw)
        want = kind.split(" ")[0]
        raise ConfigError(f"{_env(name)}={shown} is not a valid {want}") from None
    return raw


def parse_storage_options(raw: str | None) -> dict[str, Any] | None:
    """The --storage-options JSON argument; the error never echoes the value (it holds keys)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--storage-options is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ConfigError("--storage-options must be a JSON object")
    return value
