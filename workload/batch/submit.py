"""A Batch file registered and submitted in order with boto3, as the seed's script does by hand:
each job definition registered (its new revision's ARN is what the jobs name), then each job
submitted, its dependsOn names swapped for the jobIds that the earlier submissions returned.

The file is checked offline first (model.py), so nothing is registered from a file Batch would
refuse halfway. A refused request is one line and a code from its HTTP status: 403 -> 77, any
other 4xx -> 78, 429 and 5xx (and no answer) -> 75."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, PermissionDenied, TransientError, WorkloadError
from .model import check


def submit(document: dict, client: Any, *, say: Callable[[str], None] = print) -> dict[str, str]:
    """Register and submit everything in `document` through a boto3 Batch `client`; jobName ->
    jobId (the document's `submitted` ids included)."""
    check(document)
    arns: dict[str, str] = {}
    for definition in document["jobDefinitions"]:
        name = definition["jobDefinitionName"]
        answer = _call(
            f"register job definition {name!r}", client.register_job_definition, definition
        )
        arns[name] = answer["jobDefinitionArn"]
        say(f"registered {name} as {arns[name]}")
    ids = dict(document.get("submitted") or {})  # jobName -> jobId, new ones as they come
    names = {v: k for k, v in ids.items()}  # an id the file gave a job of its own
    for job in document["jobs"]:
        request = copy.deepcopy(job)
        request["jobDefinition"] = arns.get(job["jobDefinition"], job["jobDefinition"])
        for dependency in request.get("dependsOn") or []:
            if "jobId" in dependency:  # (SEQUENTIAL names no other job)
                named = names.get(dependency["jobId"], dependency["jobId"])
                dependency["jobId"] = ids.get(named, dependency["jobId"])
        answer = _call(f"submit job {job['jobName']!r}", client.submit_job, request)
        ids[job["jobName"]] = answer["jobId"]
        say(f"submitted {job['jobName']} as {answer['jobId']}")
    return ids


def _call(what: str, method: Callable[..., dict], request: dict) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return method(**request)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = exc.response.get("Error", {}).get("Code", "")
        kind: type[WorkloadError] = TransientError
        if status == 403:
            kind = PermissionDenied
        elif 400 <= status < 500 and status != 429:
            kind = ConfigError
        raise kind(f"{what}: Batch refused it ({status} {code})") from None
    except BotoCoreError as exc:  # no answer: endpoint, connection, time-out
        raise TransientError(f"{what}: no answer from Batch ({type(exc).__name__})") from None
