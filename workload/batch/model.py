"""A Batch file checked offline against botocore's Batch service model, as the API would check
each request before accepting it, and against the limits Batch documents but the model does not
carry (array sizes, dependencies, attempts, exit rules, timeouts).

botocore's ParamValidator checks each request's members, types and required fields; it leaves
enums to the service, so they are checked here from the same model. No network, no credentials:
the model ships inside botocore (the `batch` extra, or boto3)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .build import (
    MAX_ARRAY_SIZE,
    MAX_ATTEMPTS,
    MAX_DEPENDS_ON,
    MAX_EXIT_RULES,
    MIN_ARRAY_SIZE,
    MIN_TIMEOUT_SECONDS,
)

INSTALL_HINT = "botocore is needed to check Batch requests: pip install 'workload[s3]' or boto3"


def service_model():
    try:
        import botocore.session
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return botocore.session.get_session().get_service_model("batch")


def problems(document: Any) -> list[str]:
    """What Batch would refuse in a Batch file (build.py's shape), one line each."""
    if not isinstance(document, dict) or set(document) - {"jobDefinitions", "jobs", "submitted"}:
        return ["a Batch file is an object of jobDefinitions, jobs (and submitted job ids)"]
    definitions, jobs = document.get("jobDefinitions"), document.get("jobs")
    submitted = document.get("submitted") or {}
    if not isinstance(definitions, list) or not definitions:
        return ["jobDefinitions: a list of RegisterJobDefinition requests, not empty"]
    if not isinstance(jobs, list) or not jobs:
        return ["jobs: a list of SubmitJob requests, not empty"]
    if not isinstance(submitted, dict):
        return ["submitted: an object of jobName -> jobId"]
    if bad := [r for r in definitions + jobs if not isinstance(r, dict)]:
        return [f"a request that is not an object: {str(bad[0])[:80]}"]
    model, out = service_model(), []  # first: without botocore, one line and its install hint
    from botocore.validate import ParamValidator

    requests = [("RegisterJobDefinition", d) for d in definitions]
    requests += [("SubmitJob", j) for j in jobs]
    for operation, request in requests:
        name = request.get("jobDefinitionName") or request.get("jobName")
        what = f"{operation} {name!r}"
        shape = model.operation_model(operation).input_shape
        report = ParamValidator().validate(request, shape)
        if report.has_errors():
            out += [f"{what}: {line.strip()}" for line in report.generate_report().splitlines()]
            continue
        out += [f"{what}: {p}" for p in _enums(request, shape, "")]
        out += [f"{what}: {p}" for p in _limits(request)]
    return out or _references(document)  # the references once every request is well-formed


def check(document: Any) -> None:
    """ConfigError naming the first problem, with how many there are."""
    found = problems(document)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(f"{found[0]}{more}")


def _enums(value: Any, shape, path: str) -> list[str]:
    out = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in shape.members.items():
            if key in value:
                out += _enums(value[key], member, f"{path}.{key}" if path else key)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            out += _enums(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            out += _enums(item, shape.value, f"{path}.{key}")
    elif shape.type_name == "string" and value not in (getattr(shape, "enum", None) or [value]):
        out.append(f"{path} {value!r} is not one of {', '.join(shape.enum)}")
    return out


def _limits(request: dict) -> list[str]:
    out = []
    size = (request.get("arrayProperties") or {}).get("size")
    if size is not None and not MIN_ARRAY_SIZE <= size <= MAX_ARRAY_SIZE:
        out.append(f"arrayProperties.size {size} is outside {MIN_ARRAY_SIZE}..{MAX_ARRAY_SIZE}")
    if len(request.get("dependsOn") or []) > MAX_DEPENDS_ON:
        out.append(f"dependsOn has {len(request['dependsOn'])} jobs, over {MAX_DEPENDS_ON}")
    retry = request.get("retryStrategy") or {}
    if "attempts" in retry and not 1 <= retry["attempts"] <= MAX_ATTEMPTS:
        out.append(f"retryStrategy.attempts {retry['attempts']} is outside 1..{MAX_ATTEMPTS}")
    if len(retry.get("evaluateOnExit") or []) > MAX_EXIT_RULES:
        out.append(f"retryStrategy.evaluateOnExit has over {MAX_EXIT_RULES} rules")
    timeout = (request.get("timeout") or {}).get("attemptDurationSeconds")
    if timeout is not None and timeout < MIN_TIMEOUT_SECONDS:
        out.append(f"timeout.attemptDurationSeconds {timeout} is under {MIN_TIMEOUT_SECONDS}")
    return out


def _references(document: dict) -> list[str]:
    """Every dependency names an earlier job of the file (or a submitted job id)."""
    submitted = document.get("submitted") or {}
    out, earlier = [], set(submitted.values())
    for job in document["jobs"]:
        for dep in job.get("dependsOn") or []:
            if "jobId" not in dep and dep.get("type") == "SEQUENTIAL":
                continue  # its own children one after another: no other job named
            if dep.get("jobId") not in earlier:
                out.append(
                    f"SubmitJob {job['jobName']!r}: dependsOn {dep.get('jobId')!r} is no "
                    "earlier job of the file"
                )
        earlier.add(job["jobName"])
        if job["jobName"] in submitted:
            earlier.add(submitted[job["jobName"]])
    return out
