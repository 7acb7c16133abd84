"""workload itself: a level-1 pod, the final pod, and the whole tree of `workload run`."""

from __future__ import annotations

import json
from pathlib import Path

from . import Spec, Work, engine


@engine("ours", "pod_merge", "pod_aggregate", "rss", "s3")
def pod(spec: Spec) -> Work:
    """Level-1 pod 0 on a root whose l1 holds the pair: l1/0 + l1/1 -> l2/0."""
    op = spec.variant or ("aggregate" if spec.case == "pod_aggregate" else "merge")
    return _level_pod(spec.root, op, fan_in=2)


@engine("ours", "fan_in")
def fan_in_pod(spec: Spec) -> Work:
    """Level-1 merge pod 0 at fan-in k = len(spec.inputs): l1/0 .. l1/k-1 -> l2/0, on local disk
    or on S3 (the variant says which; the root does it)."""
    return _level_pod(spec.root, "merge", fan_in=len(spec.inputs))


def _level_pod(root: str, op: str, fan_in: int) -> Work:
    """Level-1 pod 0 of `op` at `fan_in`. On S3 the store's client is made here, untimed, as
    the transfer engines' is (engines/transfer.py): s3fs's import and its first session cost
    about 0.6 s of a pod's start and belong to none of the limits max(download, compute,
    upload); fsspec's instance cache hands the pod the same client."""
    from workload import layout
    from workload.process import process
    from workload.settings import Settings

    settings = Settings.load(root=root, op=op, fan_in=fan_in)
    store = settings.store()
    if not store.is_local:
        from fsspec.asyn import sync

        sync(store.fs.loop, store.fs.set_session)

    def work():
        process(settings, 0, 1)
        return {"outputs": [f"{root}/{layout.level_file(2, 0)}"]}

    return work


@engine("ours", "final", "final_10m")
def final(spec: Spec) -> Work:
    """The final pod over l1/0..n-1 read directly as the last level."""
    from workload import layout
    from workload.final import final
    from workload.settings import Settings

    settings = Settings.load(root=spec.root)

    def work():
        final(settings, 0, len(spec.inputs), level=1, partial=True)
        return {"outputs": [f"{spec.root}/{layout.BY_KEY}", f"{spec.root}/{layout.BY_CATEGORY}"]}

    return work


@engine("ours", "job")
def job(spec: Spec) -> Work:
    """`workload run`'s whole tree (pods in a pool of fresh processes, one per CPU) on the
    cached data."""
    from workload import layout, run_local
    from workload.settings import Settings

    settings = Settings.load(root=spec.root)
    d = spec.dataset
    manifest = json.loads(Path(spec.root, layout.MANIFEST).read_text())
    wanted = {"files": d["files"], "rows": d["files"] * d["rows"], "keys": d["keys"]}
    differs = sorted(k for k, v in {**wanted, "seed": d["seed"]}.items() if manifest.get(k) != v)
    if differs:  # run_local.run would then regenerate the inputs inside the timed region
        raise RuntimeError(f"cached manifest differs from the job's arguments in {differs}")

    def work():
        report = run_local.run(
            settings,
            **{k: d[k] for k in ("files", "rows", "keys", "seed")},
            workers=spec.cpus or 2,
            final_fan_in=spec.final_fan_in,
        )
        return {
            "outputs": [f"{spec.root}/{layout.BY_KEY}", f"{spec.root}/{layout.BY_CATEGORY}"],
            # The pods are processes of their own: the job's peak is its largest process.
            "child_peak_rss_mb": max(level["max_pod_rss_mb"] for level in report["levels"]),
            "verified": report["verified"],
        }

    return work


@engine("ours", "pod_process")
def pod_process(spec: Spec) -> Work:
    """A whole level-1 pod process on tiny inputs, as the cluster starts it: its fixed cost
    (interpreter, imports, settings, the manifest, one output)."""
    import subprocess
    import sys

    from workload import layout

    command = [sys.executable, "-m", "workload.process", "0", "1", "--root", spec.root]

    def work():
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {"outputs": [f"{spec.root}/{layout.level_file(2, 0)}"]}

    return work
