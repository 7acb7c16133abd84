"""A timeline document (workload/timeline.py) as a Gantt chart in a PNG. matplotlib is optional
(the `bench` extra): without it --gantt is refused in one line, exit 78."""

from __future__ import annotations

import importlib.util

from .errors import ConfigError


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("--gantt needs matplotlib: pip install 'workload[report]'")


# Above this many attempts the chart is painted as an image, a pixel row holding several
# attempts (a line each took 8.4 s for 100k attempts, the image 0.5 s).
RASTER_ABOVE = 5_000
RASTER_ROWS, RASTER_COLUMNS, MIN_COLUMNS = 1_000, 1_200, 3
GREY, RED = "0.75", "tab:red"


def gantt(doc: dict, path: str) -> None:
    """A row per pod attempt in order of creation: grey from its creation to its process's start
    (no grey where that start is unknown), then its level's colour to its end, red for an
    attempt that failed."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pods = doc["pods"]
    names = {row["level"]: row["name"] for row in doc["levels"]}
    palette = [f"C{i}" for i in range(10) if i != 3]  # C3 is red, the failed attempts' colour
    colours = {level: palette[i % len(palette)] for i, level in enumerate(names)}
    fig, ax = plt.subplots(figsize=(10, 3 + min(len(pods), 600) / 100))
    if len(pods) > RASTER_ABOVE:
        _image(ax, pods, colours, max(doc["makespan_s"], 1e-9))  # its rows run downwards
    else:
        _lines(ax, pods, colours)
        ax.invert_yaxis()
    handles = [
        ax.plot([], [], color=colours[level], label=name)[0] for level, name in names.items()
    ]
    handles.append(ax.plot([], [], color=GREY, label="starting")[0])
    if not all(p["ok"] for p in pods):
        handles.append(ax.plot([], [], color=RED, label="failed attempt")[0])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.set_xlabel("seconds from the run's start")
    ax.set_ylabel("pod attempts, in order of creation")
    name = f" {doc['name']}" if doc.get("name") else ""
    ax.set_title(
        f"{doc['source']}{name}: {doc['form']} form, {len(pods):,} pod attempts, "
        f"makespan {doc['makespan_s']:,.1f} s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _lines(ax, pods: list[dict], colours: dict) -> None:
    width = max(0.3, min(6.0, 300 / max(len(pods), 1)))  # rows stay distinct up to ~1,000
    rows = range(len(pods))
    created = [p["created"] for p in pods]
    started = [p["created"] if p.get("started") is None else p["started"] for p in pods]
    ax.hlines(rows, created, started, colors=GREY, linewidth=width)
    ax.hlines(
        rows,
        started,
        [p["finished"] for p in pods],
        colors=[colours[p["level"]] if p["ok"] else RED for p in pods],
        linewidth=width,
    )


def _image(ax, pods: list[dict], colours: dict, makespan: float) -> None:
    """The chart as pixels: grey first, then the levels' colours, then the failed attempts',
    each painted over the one before where attempts share a pixel."""
    import numpy as np
    from matplotlib.colors import to_rgb

    order = [GREY, *dict.fromkeys(colours.values()), RED]
    code = {colour: i + 1 for i, colour in enumerate(order)}
    grid = np.zeros((RASTER_ROWS, RASTER_COLUMNS), dtype=np.uint8)
    scale = RASTER_COLUMNS / makespan

    def column(t: float) -> int:
        return min(RASTER_COLUMNS - 1, max(0, int(t * scale)))

    for paint in ("grey", "ok", "failed"):
        for i, p in enumerate(pods):
            row = i * RASTER_ROWS // len(pods)
            started = p["created"] if p.get("started") is None else p["started"]
            if paint == "grey":
                span, colour = (p["created"], started), GREY
            elif p["ok"] == (paint == "ok"):
                span, colour = (started, p["finished"]), colours[p["level"]] if p["ok"] else RED
            else:
                continue
            if span[1] > span[0]:  # at least MIN_COLUMNS wide, to be seen
                first = column(span[0])
                grid[row, first : max(column(span[1]), first + MIN_COLUMNS - 1) + 1] = code[colour]
    palette = np.array([(1.0, 1.0, 1.0), *(to_rgb(c) for c in order)])
    extent = (0.0, makespan, len(pods), 0.0)
    ax.imshow(palette[grid], aspect="auto", extent=extent, interpolation="nearest")
