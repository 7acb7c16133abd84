"""The s3 case's transfer limits, measured on the same link and server as the pod: a pod's
bytes moved and nothing computed, so that max(download, compute, upload) compares the pod with
what this moto-behind-a-shaper can do, not with the link's nominal pace (moto parses every
request in Python on the same cores; the link figures alone hid that)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from workload.storage.upload import IN_FLIGHT, PART_SIZE

from . import Spec, Work, engine


def _client(spec: Spec):
    import boto3  # keys from AWS_ACCESS_KEY_ID/...

    return boto3.client("s3", endpoint_url=spec.endpoint)


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


@engine("download", "s3", writes=False)
def download(spec: Spec) -> Work:
    """Every input whole, all at once, one connection each (the pod reads its inputs in
    parallel)."""
    client = _client(spec)

    def get(path: str) -> int:
        bucket, key = _split(path)
        return len(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def work():
        with ThreadPoolExecutor(len(spec.inputs)) as pool:
            got = sum(pool.map(get, spec.inputs))
        return {"outputs": [], "bytes": got}

    return work


@engine("upload", "s3", writes=False)
def upload(spec: Spec) -> Work:
    """As many bytes as the inputs hold (a merge rewrites them all), as one multipart upload
    in the pod's parts, IN_FLIGHT at once."""
    client = _client(spec)
    heads = [client.head_object(Bucket=b, Key=k) for b, k in map(_split, spec.inputs)]
    size = sum(h["ContentLength"] for h in heads)
    body = bytes(range(256)) * (size // 256 + 1)
    parts = [body[i : i + PART_SIZE] for i in range(0, size, PART_SIZE)]
    bucket, prefix = _split(spec.out)
    key = f"{prefix}/upload.bin"

    def work():
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

        def put(numbered: tuple[int, bytes]) -> dict:
            n, data = numbered
            etag = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data
            )["ETag"]
            return {"PartNumber": n, "ETag": etag}

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            done = list(pool.map(put, enumerate(parts, 1)))
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )
        return {"outputs": []}

    return work
