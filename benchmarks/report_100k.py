"""`workload report` on a 100k-pod Argo status, in fresh processes (issue 10: "within a few
seconds", where Argo's UI does not).

    PYTHONPATH=. python benchmarks/report_100k.py [--repeats 3] [--data ./data/bench]

The status is the node model's (workload/argo/status.py builders): 100,000 files at fan-in 2,
steps form, 99,980 pods, 199,974 nodes, about 250 MB of JSON; built once and cached under
DATA/report_100k/ (half a minute). Then, each a fresh process, median of the repeats:
- `workload report STATUS --json OUT`, timed from outside (interpreter and imports included);
- the status read to a timeline document streamed (argo/history.py over workload/jsonstream.py),
  and by json.load of the whole object then the same conversion, each with its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

FILES, FAN_IN = 100_000, 2


def build(path: pathlib.Path) -> None:
    from workload import layout
    from workload.argo import status

    shape = layout.plan(FILES, FAN_IN)
    pods = [shape.pods(level) for level in range(1, shape.levels + 1)] + [1]
    part = path.with_suffix(".part")
    with open(part, "w") as f:  # node by node: the whole map would take several GB
        f.write('{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", ')
        f.write(f'"metadata": {{"name": "{status.WORKFLOW_NAME}"}}, ')
        f.write('"status": {"phase": "Succeeded", "nodes": {')
        for i, node in enumerate(status.nodes(pods, fan_in=FAN_IN, form="steps")):
            f.write(("," if i else "") + json.dumps(node["id"]) + ":" + json.dumps(node))
        f.write("}}}\n")
    part.rename(path)


def child(how: str, path: str) -> None:
    """One way of reading the status, timed here; one JSON line."""
    from workload import timeline
    from workload.argo import history
    from workload.metrics import peak_rss_mb

    started = time.perf_counter()
    if how == "streamed":
        with open(path, encoding="utf-8") as f:
            doc = timeline.read(f, path)
    else:
        with open(path, encoding="utf-8") as f:
            whole = json.load(f)
        status = history.Status()
        for node in whole["status"]["nodes"].values():
            template = node.get("templateName")
            if node.get("type") == "Pod" and template in (history.PROCESS, history.FINAL):
                status.pods.append(history._pod(node, template == history.FINAL, path))
            elif status.form is None and node.get("type") in history._FORMS:
                status.form = history._FORMS[node["type"]]
        status.fields = {k: v for k, v in whole["status"].items() if k != "nodes"}
        doc = timeline.of_workflow(whole, status)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "pods": len(doc["pods"])}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=os.environ.get("BENCH_DATA", "./data/bench"))
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(*args.child)
    folder = pathlib.Path(args.data) / "report_100k"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "status.json"
    if not path.exists():
        started = time.perf_counter()
        build(path)
        print(f"built {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(f"status: {path.stat().st_size / 1e6:,.0f} MB")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    whole = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        command = [sys.executable, "-m", "workload", "report", str(path)]
        command += ["--json", str(folder / "report.json")]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        whole.append(time.perf_counter() - started)
    print(
        f"workload report, fresh process: median {statistics.median(whole):.2f} s "
        f"({', '.join(f'{s:.2f}' for s in whole)})"
    )
    for how in ("streamed", "json.load"):
        runs = []
        for _ in range(args.repeats):
            command = [sys.executable, __file__, "--child", how, str(path)]
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            runs.append(json.loads(out.stdout))
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        print(
            f"read to a timeline, {how}: median {seconds:.2f} s, peak RSS {rss:,.0f} MB, "
            f"{runs[0]['pods']:,} pod attempts"
        )


if __name__ == "__main__":
    main()
