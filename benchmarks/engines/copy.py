"""The physical limits: a merge pod with a free merge, and the whole job's tree with free ops."""

from __future__ import annotations

from . import Spec, Work, engine


@engine("copy", "pod_merge", sorts=False)
def copy(spec: Spec) -> Work:
    """Level-1 pod 0 with a free merge (copy_pod): l1/0 + l1/1 -> l2/0 concatenated."""
    from workload import layout
    from workload.settings import Settings

    settings = Settings.load(root=spec.root, fan_in=len(spec.inputs))

    def work():
        copy_pod(settings, 1, 0, len(spec.inputs))
        return {"outputs": [settings.store().path(layout.level_file(2, 0))]}

    return work


def copy_pod(settings, level: int, index: int, files: int) -> dict:
    """A level pod with a free op: its inputs read and written unchanged, concatenated (the
    same store, read window, batches, writer settings and atomic publish as a level pod; no
    sort order claimed, as a concatenation has none)."""
    from workload import layout, schema
    from workload.metrics import peak_rss_mb
    from workload.storage.parquet import Sink

    store = settings.store()
    rels = layout.inputs(level, index, files, settings.fan_in)
    out_rel = layout.level_file(level + 1, index)
    rows = read = 0
    with (
        store.output(out_rel) as out,
        Sink(out.path, schema.EVENTS, sorted_by=(), row_group_rows=settings.row_group_rows) as sink,
    ):
        for rel in rels:
            shard = store.open_parquet(rel, settings.read_window)
            read += shard.size
            for batch in shard.batches(settings.batch_rows):
                rows += batch.num_rows
                sink.write(batch)
    return {"rows_in": rows, "bytes_in": read, "peak_rss_mb": peak_rss_mb()}


def read_pod(settings, level: int, count: int) -> dict:
    """A final pod with a free op: every file of the last level read, nothing computed."""
    from workload import layout
    from workload.metrics import peak_rss_mb

    store = settings.store()
    rows = read = 0
    for i in range(count):
        shard = store.open_parquet(layout.level_file(level, i), settings.read_window)
        read += shard.size
        rows += sum(b.num_rows for b in shard.batches(settings.batch_rows))
    return {"rows_in": rows, "bytes_in": read, "peak_rss_mb": peak_rss_mb()}


@engine("copy", "job", sorts=False)
def copy_tree(spec: Spec) -> Work:
    """The job's tree with free ops: the same plan, one fresh process per pod in
    workload.run_local's pool, `cpus` at a time, every level read and rewritten, the last one
    only read. The physical limit of the whole job on this machine and store."""
    from workload import layout, run_local
    from workload.settings import Settings

    settings = Settings.load(root=spec.root)
    plan = layout.plan(spec.dataset["files"], settings.fan_in, final_fan_in=spec.final_fan_in)

    def work():
        peaks = []
        for level in range(1, plan.levels + 1):
            calls = [(settings, level, i, plan.files[level - 1]) for i in range(plan.pods(level))]
            peaks += [r["peak_rss_mb"] for r in run_local.run_pods(copy_pod, calls, spec.cpus or 2)]
        [last] = run_local.run_pods(read_pod, [(settings, plan.final_level, plan.final_count)], 1)
        last_level = range(plan.final_count)
        outputs = [f"{spec.root}/{layout.level_file(plan.final_level, i)}" for i in last_level]
        return {"outputs": outputs, "child_peak_rss_mb": max([*peaks, last["peak_rss_mb"]])}

    return work
