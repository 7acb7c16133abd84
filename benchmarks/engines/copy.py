"""The physical limit of a merge pod: ours with a free merge."""

from __future__ import annotations

from . import Spec, Work, engine


@engine("copy", "pod_merge", sorts=False)
def copy(spec: Spec) -> Work:
    """The same reads as ours (same store, window and batches), the same writer settings
    (storage.parquet.Sink) and the same atomic publish, concatenating instead of merging."""
    from workload import layout, schema
    from workload.settings import Settings
    from workload.storage.parquet import Sink

    settings = Settings.load(root=spec.root)
    store = settings.store()
    rels = [layout.level_file(1, i) for i in range(len(spec.inputs))]
    out_rel = layout.level_file(2, 0)

    def work():
        shards = [store.open_parquet(rel, settings.read_window) for rel in rels]
        with (
            store.output(out_rel) as out,
            Sink(
                out.path,
                schema.EVENTS,
                sorted_by=schema.EVENTS_SORTED_BY,
                row_group_rows=settings.row_group_rows,
            ) as sink,
        ):
            for shard in shards:
                for batch in shard.batches(settings.batch_rows):
                    sink.write(batch)
        return {"outputs": [store.path(out_rel)]}

    return work
