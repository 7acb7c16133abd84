"""One typed settings object for the benchmarks, printed at start. Each field comes from the
command line, else from an environment variable BENCH_<FIELD>, else from its default (the same
rule as workload.settings, with its own prefix so the two never mix)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import SCALES

ENV_PREFIX = "BENCH_"
PACKAGE_DIR = Path(__file__).resolve().parent

# Every case and the engines it compares, in the order they run within a repeat.
ENGINES: dict[str, tuple[str, ...]] = {
    "pod_merge": ("ours", "copy", "duckdb", "polars"),
    "pod_aggregate": ("ours", "duckdb", "polars"),
    "final": ("ours", "duckdb", "polars"),
    "job": ("ours", "duckdb", "polars"),
    "rss": ("ours",),
    "s3": ("ours", "s3fs_read_table"),
}
CASES = tuple(ENGINES)
ALL_ENGINES = tuple(dict.fromkeys(e for engines in ENGINES.values() for e in engines))


class SettingsError(ValueError):
    """A bad setting: the command line prints it as one line and exits 2."""


@dataclass(frozen=True)
class BenchSettings:
    scale: str = "default"
    # Fresh processes per engine and case; medians need several.
    repeats: int = 5
    # Where results.csv, results.md and the plots go; "" means benchmarks/results, or
    # benchmarks/results-small for the small scale so smoke numbers never land in the
    # committed results.
    output: str = ""
    # Generated inputs, cached between runs under DATA/<scale>/<dataset>/.
    data: str = "./data/bench"
    # Engines and cases to run; empty means all (cases: all of the scale's).
    engines: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    # Seconds one child process may take before the run is abandoned.
    timeout: int = 3600

    @classmethod
    def load(cls, **overrides: Any) -> BenchSettings:
        """Defaults < environment < explicit overrides (None means "not given")."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw:
                values[f.name] = _parse(f.name, str(f.type), raw)
        for name, value in overrides.items():
            if value is None:
                continue
            kind = str(next(f.type for f in dataclasses.fields(cls) if f.name == name))
            values[name] = _parse(name, kind, value) if isinstance(value, str) else value
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.scale not in SCALES:
            raise SettingsError(
                f"unknown scale {self.scale!r}; expected one of {', '.join(SCALES)}"
            )
        if self.repeats < 1:
            raise SettingsError(f"repeats must be >= 1, got {self.repeats}")
        if self.timeout < 1:
            raise SettingsError(f"timeout must be >= 1, got {self.timeout}")
        for name in self.cases:
            if name not in CASES:
                raise SettingsError(f"unknown case {name!r}; expected some of {', '.join(CASES)}")
            if name not in SCALES[self.scale].cases:
                raise SettingsError(
                    f"case {name!r} is not run at scale {self.scale!r} "
                    f"(its cases: {', '.join(SCALES[self.scale].cases)})"
                )
        for name in self.engines:
            if name not in ALL_ENGINES:
                raise SettingsError(
                    f"unknown engine {name!r}; expected some of {', '.join(ALL_ENGINES)}"
                )

    @property
    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output).absolute()
        return PACKAGE_DIR / ("results-small" if self.scale == "small" else "results")

    @property
    def data_dir(self) -> Path:
        # Absolute: children run in their own working folders.
        return Path(self.data).absolute()

    def selected_cases(self) -> list[str]:
        scale_cases = SCALES[self.scale].cases
        return [c for c in CASES if c in scale_cases and (not self.cases or c in self.cases)]

    def engines_for(self, case: str) -> list[str]:
        return [e for e in ENGINES[case] if not self.engines or e in self.engines]

    def describe(self) -> str:
        shown = dataclasses.asdict(self)
        shown["output"] = str(self.output_dir)
        shown["cases"] = self.selected_cases()
        return "bench settings " + json.dumps(shown, sort_keys=True)


def _parse(name: str, kind: str, raw: str) -> Any:
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    return raw
