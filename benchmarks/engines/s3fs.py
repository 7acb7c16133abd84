"""What a script would do on S3 without ours: pq.read_table of each input through s3fs, then one
pq.write_table of the concatenation through s3fs."""

from __future__ import annotations

from . import Spec, Work, engine


@engine("s3fs_read_table", "s3", sorts=False)
def read_table(spec: Spec) -> Work:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3fs
    from fsspec.asyn import sync

    fs = s3fs.S3FileSystem(endpoint_url=spec.endpoint)  # keys from AWS_ACCESS_KEY_ID/...
    sync(fs.loop, fs.set_session)  # its client made untimed, as every engine's of this case
    out = f"{spec.out}/out.parquet"

    def work():
        tables = [pq.read_table(path, filesystem=fs) for path in spec.inputs]
        pq.write_table(pa.concat_tables(tables), out, filesystem=fs, compression="zstd")
        return {"outputs": [out]}

    return work
