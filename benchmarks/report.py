"""results.md and the plots, rebuilt from results.csv alone (`python -m benchmarks report`).

Per scale: the targets and whether each holds, then one table per case (median and min-max
seconds over the repeats, median peak RSS, ratios), a time plot (median with min-max error bars
per case and engine) and, when measured, RSS against rows per input and (fan_in) the merge pod's
RSS against its fan-in beside workload.budget.project's projection.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .data import FAN_INS, SCALES

PEERS = ("duckdb", "polars")
TIMED_CASES = ("pod_merge", "pod_aggregate", "final", "final_10m", "job", "pod_process", "s3")
TITLES = {
    "pod_merge": "pod_merge: one level-1 pod, merge op (2 inputs -> 1 sorted file)",
    "pod_aggregate": "pod_aggregate: one level-1 pod, aggregate op (events -> partials)",
    "final": "final: the final pod (by_key and by_category from 32 files), 100k keys",
    "final_10m": "final_10m: the final pod over 32 files with 10M keys (streams by key)",
    "job": "job: the whole job on one machine (workload run vs its copy-limit tree and one query)",
    "pod_process": "pod_process: a whole pod process on 2 x 10 rows (its fixed cost)",
    "rss": "rss: one pod's peak RSS against its input size",
    "s3": "s3: one merge pod on S3 (moto behind a shaped link), requests counted at the server",
    "fan_in": "fan_in: the merge pod at each fan-in, local and on S3, against budget.project",
}
# (target, case, CPUs (0: every count measured), ours against: an engine, "peer" = the faster
# of DuckDB/Polars, or None = an absolute limit in seconds; the limit). Issue 11's targets.
TIME_TARGETS = [
    ("merge pod <= 1.3x the copy limit", "pod_merge", 1, "copy", 1.3),
    ("merge pod <= 1.15x the copy limit", "pod_merge", 2, "copy", 1.15),
    ("merge pod <= 0.7x the faster of DuckDB/Polars", "pod_merge", 0, "peer", 0.7),
    ("aggregate pod <= 0.5x the faster of DuckDB/Polars", "pod_aggregate", 0, "peer", 0.5),
    ("final pod, 100k keys, <= 0.9x DuckDB at < 400 MB", "final", 0, "duckdb", 0.9),
    ("final pod, 10M keys, <= 1.0x DuckDB at < 400 MB", "final_10m", 0, "duckdb", 1.0),
    ("whole job <= 1.2x its copy-limit tree", "job", 0, "copy", 1.2),
    ("a whole pod process on tiny inputs <= 0.18 s", "pod_process", 0, None, 0.18),
]
FINAL_RSS_MB, LIMIT_RSS_MB = 400, 300
FAN_IN_RSS_MB, PROJECTION_OVER = (
    400,
    1.4,
)  # fan_in: a pod's limit; the projection's margin (tests/test_memory.py: 1.4x)
STORAGE_NAMES = {"local": "local", "s3": "on S3"}
Target = tuple[str, str, bool | None]  # (what, measured, holds; None = not measured)


@dataclass
class Stat:
    """The repeats of one engine (and variant, and input size) in one case."""

    rows: list[dict] = field(default_factory=list)

    def values(self, column: str) -> list[float]:
        return [float(r[column]) for r in self.rows if r.get(column) not in (None, "")]

    @property
    def seconds(self) -> float:
        return statistics.median(self.values("seconds"))

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.values("seconds")), max(self.values("seconds"))

    @property
    def rss(self) -> float:
        return statistics.median(self.values("peak_rss_mb"))

    @property
    def check(self) -> str:
        return "ok" if all(r["check"] == "ok" for r in self.rows) else "**FAILED**"


# (case, engine, variant, rows per input, CPUs)
Stats = dict[tuple[str, str, str, int, int], Stat]


def group(rows: list[dict]) -> Stats:
    stats: Stats = defaultdict(Stat)
    for r in rows:
        where = (r["case"], r["engine"], r["variant"], int(r["rows_per_input"]))
        stats[(*where, int(r.get("cpus") or 0))].rows.append(r)
    return dict(stats)


def cpu_counts(stats: Stats, case: str) -> list[int]:
    return sorted({k[4] for k in stats if k[0] == case})


def of_case(stats: Stats, case: str, cpus: int | None = None) -> list[tuple[str, Stat]]:
    return [(k[1], s) for k, s in stats.items() if k[0] == case and cpus in (None, k[4])]


def find(stats: Stats, case: str, engine: str, cpus: int | None = None) -> Stat | None:
    return next((s for e, s in of_case(stats, case, cpus) if e == engine), None)


def best_peer(stats: Stats, case: str, cpus: int | None = None) -> Stat | None:
    peers = [s for e in PEERS if (s := find(stats, case, e, cpus)) is not None]
    return min(peers, key=lambda s: s.seconds) if peers else None


def by_op(stats: Stats) -> dict[str, dict[int, Stat]]:
    """The rss case: {op: {rows per input: stat}}, sizes ascending (at the fewest CPUs)."""
    out: dict[str, dict[int, Stat]] = defaultdict(dict)
    for (case, _, op, rows, _), stat in sorted(stats.items()):
        if case == "rss" and rows not in out[op]:
            out[op][rows] = stat
    return dict(sorted(out.items()))


def by_fan_in(stats: Stats) -> dict[tuple[str, int, int], Stat]:
    """The fan_in case: {(storage, fan-in, CPUs): stat}, local first, fan-ins ascending."""
    found = {}
    for (case, _, variant, _, cpus), stat in stats.items():
        if case == "fan_in":
            storage, _, k = variant.rpartition("-")
            found[storage, int(k), cpus] = stat
    order = list(STORAGE_NAMES)
    return dict(sorted(found.items(), key=lambda kv: (kv[0][2], order.index(kv[0][0]), kv[0][1])))


def projected(stat: Stat) -> float:
    return statistics.median(stat.values("projected_mb"))


# -- targets ---------------------------------------------------------------------------------
def targets(stats: Stats) -> list[Target]:
    out: list[Target] = []
    for what, case, wanted_cpus, against, limit in TIME_TARGETS:
        counts = [wanted_cpus] if wanted_cpus else cpu_counts(stats, case) or [0]
        for cpus in counts:
            label = f"{what} at {cpus} CPU{'s' * (cpus > 1)}" if cpus else what
            out.append(_target(stats, label, case, cpus, against, limit))
    out += _rss_targets(by_op(stats)) + _s3_targets(find(stats, "s3", "ours"))
    return out + _pipelined_targets(stats) + _fan_in_targets(by_fan_in(stats))


def _pipelined_targets(stats: Stats) -> list[Target]:
    """The merge pod on the shaped object store against max(download, compute, upload): its
    bytes moved on the same link and server with nothing computed (the download and upload
    engines), and the same pod's time on local disk at the same CPUs."""
    what = "merge pod on the shaped object store <= 1.2x max(download, compute, upload)"
    out: list[Target] = []
    for cpus in cpu_counts(stats, "s3") or [0]:
        label = f"{what} at {cpus} CPU{'s' * (cpus > 1)}" if cpus else what
        ours, local = find(stats, "s3", "ours", cpus), find(stats, "pod_merge", "ours", cpus)
        down, up = find(stats, "s3", "download", cpus), find(stats, "s3", "upload", cpus)
        if None in (ours, local, down, up):
            out.append((label, "not measured", None))
            continue
        limits = {"download": down.seconds, "compute": local.seconds, "upload": up.seconds}
        bound = max(limits, key=lambda k: limits[k])
        r = ours.seconds / limits[bound]
        shown = ", ".join(f"{k} {_s(v)}" for k, v in limits.items())
        out.append((label, f"{r:.2f}x ({_s(ours.seconds)} s; {shown} s)", r <= 1.2))
    return out


def _target(stats: Stats, what: str, case: str, cpus: int, against, limit: float) -> Target:
    ours = find(stats, case, "ours", cpus)
    if against is None:  # an absolute limit in seconds
        if ours is None:
            return what, "not measured", None
        return what, f"{_s(ours.seconds)} s", ours.seconds <= limit
    ref = best_peer(stats, case, cpus) if against == "peer" else find(stats, case, against, cpus)
    if ours is None or ref is None:
        return what, "not measured", None
    r = ours.seconds / ref.seconds
    measured, holds = f"{r:.2f}x ({_s(ours.seconds)} s vs {_s(ref.seconds)} s)", r <= limit
    if case.startswith("final"):  # and its memory
        measured += f" at {ours.rss:.0f} MB"
        holds = holds and ours.rss < FINAL_RSS_MB
    return what, measured, holds


def _rss_targets(ops: dict[str, dict[int, Stat]]) -> list[Target]:
    if not ops:
        return [
            (f"pod RSS <= {LIMIT_RSS_MB} MB", "not measured (scale large)", None),
            ("pod RSS growth < 20% from 1M to 8M rows per input", "not measured", None),
        ]
    peak = max(max(s.values("peak_rss_mb")) for sizes in ops.values() for s in sizes.values())
    out: list[Target] = [(f"pod RSS <= {LIMIT_RSS_MB} MB", f"max {peak:.0f} MB", peak <= 300)]
    for op, sizes in ops.items():
        lo, hi = sizes[min(sizes)], sizes[max(sizes)]
        growth = (hi.rss - lo.rss) / lo.rss
        what = f"{op} pod RSS growth < 20% from {_rows(min(sizes))} to {_rows(max(sizes))} rows"
        measured = f"{growth:+.0%} ({lo.rss:.0f} -> {hi.rss:.0f} MB)"
        out.append((what + " per input", measured, growth < 0.2))
    return out


def _fan_in_targets(points: dict[tuple[str, int, int], Stat]) -> list[Target]:
    """The merge pod's peak RSS (every repeat) under the pod limit at every fan-in of FAN_INS,
    local and on S3; the projection at or above the median measured and within 1.4x of it. A
    limit met at the fan-ins measured while some of FAN_INS were not is n/a, not a yes."""
    out: list[Target] = []
    wanted = f"{FAN_INS[0]}..{FAN_INS[-1]}"
    for storage, name in STORAGE_NAMES.items():
        what = f"merge pod RSS < {FAN_IN_RSS_MB} MB at every fan-in {wanted}, {name}"
        mine = {(k, c): s for (st, k, c), s in points.items() if st == storage}
        if not mine:
            out.append((what, "not measured", None))
            continue
        peak, k, cpus = max((max(s.values("peak_rss_mb")), k, c) for (k, c), s in mine.items())
        measured = f"max {peak:.0f} MB (fan-in {k}, {cpus} CPU{'s' * (cpus > 1)})"
        missing = [f for f in FAN_INS if f not in {k for k, _ in mine}]
        if missing:
            measured += f"; fan-in {', '.join(map(str, missing))} not measured"
        holds = False if peak >= FAN_IN_RSS_MB else None if missing else True
        out.append((what, measured, holds))
    what = f"projection >= measured and <= {PROJECTION_OVER}x measured at every fan-in"
    if not points:
        return [*out, (what, "not measured", None)]
    ratios = {key: projected(s) / s.rss for key, s in points.items()}
    off = [
        f"{storage}-{k}{f' {c} CPUs' * (c > 1)} {r:.2f}x"
        for (storage, k, c), r in ratios.items()
        if not 1.0 <= r <= PROJECTION_OVER
    ]
    measured = f"projected/measured {min(ratios.values()):.2f}-{max(ratios.values()):.2f}x"
    measured += f"; outside [1, {PROJECTION_OVER}]: {', '.join(off)}" if off else ""
    return [*out, (what, measured, not off)]


def _s3_targets(ours: Stat | None) -> list[Target]:
    gets_what = "S3 GETs per input <= 2 + ceil(bytes / 32 MiB)"
    put_what = "S3: exactly one PUT or one multipart upload per output"
    if ours is None:
        return [(gets_what, "not measured", None), (put_what, "not measured", None)]
    pairs = [
        (int(g), int(t))
        for r in ours.rows
        for g, t in zip(r["input_gets"].split(";"), r["input_get_targets"].split(";"), strict=True)
    ]
    worst = max(pairs, key=lambda p: p[0] - p[1])
    uploads = all(r["uploads_per_output_ok"] == "yes" for r in ours.rows)
    puts, multipart = (max(int(r[c]) for r in ours.rows) for c in ("puts", "multipart_uploads"))
    return [
        (gets_what, f"max {worst[0]} GETs (target {worst[1]})", all(g <= t for g, t in pairs)),
        (put_what, f"{puts} PUT, {multipart} multipart", uploads),
    ]


# -- tables ----------------------------------------------------------------------------------
def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _s(x: float) -> str:
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def _rows(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def _mb(value: str) -> str:
    return f"{int(value) / 2**20:.1f}"


def case_table(stats: Stats, case: str) -> list[str]:
    if not of_case(stats, case):
        return []
    lines = [f"### {TITLES[case]}", ""]
    for cpus in cpu_counts(stats, case):
        engines = of_case(stats, case, cpus)
        copy, peer = find(stats, case, "copy", cpus), best_peer(stats, case, cpus)
        head = ["engine", "runs", "median s", "min-max s", "median RSS MB"]
        head += ["x copy limit"] * bool(copy) + ["x best peer"] * bool(peer) + ["check"]
        rows = []
        for engine, s in engines:
            lo, hi = s.spread
            row = [engine, str(len(s.rows)), _s(s.seconds), f"{_s(lo)}-{_s(hi)}", f"{s.rss:.0f}"]
            row += [f"{s.seconds / ref.seconds:.2f}" for ref in (copy, peer) if ref]
            rows.append([*row, s.check])
        first = engines[0][1].rows[0]
        size = f"{int(first['inputs'])} x {int(first['rows_per_input']):,} rows in, "
        size += f"{_mb(first['bytes_in'])} MB"
        size += f"; {cpus} CPU{'s' * (cpus > 1)}" if cpus else ""
        lines += [size, "", *_table(head, rows), ""]
    return lines


def rss_table(stats: Stats) -> list[str]:
    rows = []
    for op, sizes in by_op(stats).items():
        for rows_per_input, s in sizes.items():
            rss = s.values("peak_rss_mb")
            rows.append([op, f"{rows_per_input:,}", str(len(s.rows)), f"{s.rss:.0f}"])
            rows[-1] += [f"{min(rss):.0f}-{max(rss):.0f}", _s(s.seconds), s.check]
    head = ["op", "rows per input", "runs", "median RSS MB", "min-max RSS MB", "median s", "check"]
    return [f"### {TITLES['rss']}", "", *_table(head, rows), ""] if rows else []


def s3_table(stats: Stats) -> list[str]:
    rows = []
    for (case, engine, _, _, cpus), s in stats.items():
        if case != "s3":
            continue
        engine = f"{engine} ({cpus} CPU{'s' * (cpus > 1)})" if cpus else engine
        last = s.rows[-1]  # request counts do not vary between repeats; the last run's
        gets = f"{last['input_gets']} (target {last['input_get_targets']})".replace(";", ", ")
        row = [engine, str(len(s.rows)), _s(s.seconds), f"{s.rss:.0f}", gets]
        row += [last["heads"], last["lists"], last["puts"]]
        row += [f"{last['multipart_uploads']} ({last['upload_parts']} parts)"]
        rows.append([*row, _mb(last["bytes_served"]), _mb(last["bytes_received"]), s.check])
    head = ["engine", "runs", "median s", "median RSS MB", "GETs per input", "HEADs", "LISTs"]
    head += ["PUTs", "multipart", "MB served", "MB uploaded", "check"]
    return [f"### {TITLES['s3']}", "", *_table(head, rows), ""] if rows else []


def fan_in_table(stats: Stats) -> list[str]:
    points = by_fan_in(stats)
    if not points:
        return []
    lines = [f"### {TITLES['fan_in']}", ""]
    head = ["fan-in", "storage", "runs", "median s", "min-max s", "median peak RSS MB"]
    head += ["min-max RSS MB", "projected MB", "measured/projected", "check"]
    for cpus in sorted({c for _, _, c in points}):
        rows = []
        for (storage, k, c), s in points.items():
            if c != cpus:
                continue
            lo, hi = s.spread
            rss = s.values("peak_rss_mb")
            row = [str(k), storage, str(len(s.rows)), _s(s.seconds), f"{_s(lo)}-{_s(hi)}"]
            row += [f"{s.rss:.0f}", f"{min(rss):.0f}-{max(rss):.0f}", f"{projected(s):.0f}"]
            rows.append([*row, f"{s.rss / projected(s):.2f}", s.check])
        first = next(s for (_, _, c), s in points.items() if c == cpus).rows[0]
        size = f"level-1 merge pod 0 over files 0..k-1 of {int(first['rows_per_input']):,} rows"
        size += f"; {cpus} CPU{'s' * (cpus > 1)}" if cpus else ""
        lines += [size, "", *_table(head, rows), ""]
    return lines


# -- plots -----------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _spread(medians: list[float], values: list[list[float]]) -> list[list[float]]:
    """Error bars from each median down to its min and up to its max."""
    return [
        [m - min(v) for m, v in zip(medians, values, strict=True)],
        [max(v) - m for m, v in zip(medians, values, strict=True)],
    ]


def time_plot(stats: Stats, path: Path, scale: str) -> Path | None:
    cases = [c for c in TIMED_CASES if of_case(stats, c)]
    if not cases:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(cases), figsize=(3.0 * len(cases), 3.9), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        counts = cpu_counts(stats, case)
        engines = list(dict.fromkeys(e for e, _ in of_case(stats, case)))
        width = 0.8 / len(counts)
        for j, cpus in enumerate(counts):
            found = [(i, find(stats, case, e, cpus)) for i, e in enumerate(engines)]
            items = [(i, s) for i, s in found if s is not None]
            medians = [s.seconds for _, s in items]
            errors = _spread(medians, [s.values("seconds") for _, s in items])
            x = [i + (j - (len(counts) - 1) / 2) * width for i, _ in items]
            colors = ["tab:blue" if engines[i] == "ours" else "tab:gray" for i, _ in items]
            label = f"{cpus} CPU{'s' * (cpus > 1)}" if cpus else None
            ax.bar(
                x,
                medians,
                width,
                yerr=errors,
                capsize=3,
                color=colors,
                label=label,
                alpha=1.0 if j == len(counts) - 1 else 0.55,
            )
        ax.set_xticks(range(len(engines)), engines)
        ax.set_title(case)
        ax.tick_params(axis="x", labelrotation=30)
    axes[0][0].set_ylabel("seconds (median, min-max); pale: fewer CPUs")
    fig.suptitle(f"time per case and engine, scale {scale}")
    return _save(plt, fig, path)


def rss_plot(stats: Stats, path: Path, scale: str) -> Path | None:
    ops = by_op(stats)
    if not ops:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for op, sizes in ops.items():
        y = [s.rss for s in sizes.values()]
        errors = _spread(y, [s.values("peak_rss_mb") for s in sizes.values()])
        x = [rows / 1e6 for rows in sizes]
        ax.errorbar(x, y, yerr=errors, marker="o", capsize=4, label=f"ours, {op}")
    ax.axhline(LIMIT_RSS_MB, color="tab:red", linestyle="--", label=f"limit {LIMIT_RSS_MB} MB")
    ax.set_xlabel("rows per input (millions), 2 inputs")
    ax.set_ylabel("peak RSS MB (VmHWM)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"pod peak RSS vs input size, scale {scale}")
    ax.legend()
    return _save(plt, fig, path)


def fan_in_plot(stats: Stats, path: Path, scale: str) -> Path | None:
    points = by_fan_in(stats)
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = dict(zip(STORAGE_NAMES, ("tab:blue", "tab:orange"), strict=True))
    for storage, cpus in dict.fromkeys((st, c) for st, _, c in points):
        line = {k: s for (st, k, c), s in points.items() if (st, c) == (storage, cpus)}
        x, y = list(line), [s.rss for s in line.values()]
        errors = _spread(y, [s.values("peak_rss_mb") for s in line.values()])
        label = f"{storage}, {cpus} CPU{'s' * (cpus > 1)}" if cpus else storage
        alpha = 1.0 if cpus == min(c for _, _, c in points) else 0.55
        color = colors.get(storage)
        ax.errorbar(x, y, yerr=errors, marker="o", capsize=4, color=color, alpha=alpha, label=label)
        projections = [projected(s) for s in line.values()]
        ax.plot(x, projections, linestyle=":", marker="x", color=color, alpha=alpha)
    ax.plot([], [], linestyle=":", marker="x", color="gray", label="projected (budget.project)")
    ax.axhline(FAN_IN_RSS_MB, color="tab:red", linestyle="--", label=f"limit {FAN_IN_RSS_MB} MB")
    ax.set_xscale("log", base=2)
    ax.set_xticks(
        sorted({k for _, k, _ in points}), [str(k) for k in sorted({k for _, k, _ in points})]
    )
    ax.set_xlabel("fan-in (inputs of the merge pod)")
    ax.set_ylabel("peak RSS MB (VmHWM)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"merge pod peak RSS vs fan-in, scale {scale}")
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- the document ----------------------------------------------------------------------------
def scale_section(scale: str, rows: list[dict], out_dir: Path) -> tuple[list[str], list[Path]]:
    stats = group(rows)
    env = rows[-1]
    lines = [f"## Scale `{scale}`", ""]
    if scale == "smoke":
        lines += ["> Smoke scale: tiny data. These timings mean nothing; only checks count.", ""]
    lines += [
        f"Machine: {env['cpu_model']}, {env['cores']} cores, {env['memory_gb']} GB. "
        f"workload {env['workload_version']}, pyarrow {env['pyarrow_version']}, "
        f"numpy {env['numpy_version']}, duckdb {env['duckdb_version']}, "
        f"polars {env['polars_version']}, Python {env['python_version']}. "
        f"Measured {min(r['timestamp'] for r in rows)} to {max(r['timestamp'] for r in rows)}.",
        "",
        "### Targets",
        "",
    ]
    holds = {True: "yes", False: "**no**", None: "n/a"}
    lines += _table(
        ["target", "measured", "holds"], [[w, m, holds[h]] for w, m, h in targets(stats)]
    )
    lines.append("")
    for case in TIMED_CASES[:-1]:
        lines += case_table(stats, case)
    lines += rss_table(stats) + s3_table(stats) + fan_in_table(stats)
    time_png, rss_png = out_dir / f"time-{scale}.png", out_dir / f"rss-{scale}.png"
    fan_in_png = out_dir / f"fan_in-{scale}.png"
    drawn = (time_plot(stats, time_png, scale), rss_plot(stats, rss_png, scale))
    drawn += (fan_in_plot(stats, fan_in_png, scale),)
    plots = [p for p in drawn if p is not None]
    lines += [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return lines, plots


def build(out_dir: Path) -> list[Path]:
    """Write results.md and the plots from out_dir/results.csv; the paths written."""
    with open(out_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks report` from `results.csv` (one row per measurement).",
        "Each engine runs in a fresh process per repeat, engines alternating within a repeat;",
        "seconds are timed inside the child around the work only (after imports and setup);",
        "RSS is the child's peak (VmHWM), for `job`/ours the largest of its processes. Every",
        "output is checked against its inputs and the other engines (the `check` column).",
        "",
    ]
    written: list[Path] = []
    for scale in SCALES:
        scale_rows = [r for r in rows if r["scale"] == scale]
        if scale_rows:
            section, plots = scale_section(scale, scale_rows, out_dir)
            lines += section
            written += plots
    (out_dir / "results.md").write_text("\n".join(lines).rstrip() + "\n")
    return [out_dir / "results.md", *written]
