"""This workload's tree as Batch Compute jobs, in the seed's JSON shape.

A Batch file holds what the seed registers and submits by hand: `jobDefinitions`
(RegisterJobDefinition requests: process-data and merge-data) and `jobs` (SubmitJob requests,
in the order they are submitted: one array job per level, then the final job). A job's
`dependsOn` names an earlier job of the file by its jobName; `batch submit` swaps in the jobId
each submission returns, as the seed's script does by hand.

Each level is one array job over its pods: a child reads its index from
AWS_BATCH_JOB_ARRAY_INDEX (`python3 process.py <level>`), and the level waits for the whole
previous array (a plain dependency: N_TO_N would link child i to child i only, and a level of a
tree reads fan-in children of the one before). A level of one pod is a plain job of a third
definition, process-data-one, with the index in its command (Batch refuses arrays under 2 and
reserves AWS_BATCH_* names for itself). Retries follow
the exit-code table the Argo manifests use (errors.py): exits 64 and 75 and a reclaimed host
are retried, anything else ends the job.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import DEFAULT_IMAGE, layout
from ..errors import EXIT_TRANSIENT, ConfigError

MOUNT = "/mnt/vol"
# AWS Batch's documented limits (the API reference; botocore's model does not carry them).
MAX_ARRAY_SIZE = 10_000
MIN_ARRAY_SIZE = 2
MAX_DEPENDS_ON = 20
MAX_ATTEMPTS = 10
MAX_EXIT_RULES = 5
MIN_TIMEOUT_SECONDS = 60
SECRET_KEYS = ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET")
EXIT_EMISSARY = 64  # retried on Argo too (argo/build.py): never one of our pods' codes


@dataclass(frozen=True)
class Options(layout.Shape):
    """What the Batch file bakes in (flags of `workload batch render`)."""

    image: str = DEFAULT_IMAGE
    root: str = MOUNT  # a path on the volume below, or a URL (then no volume)
    op: str = "merge"
    job_queue: str = "workload"
    vcpus: str = "1"
    memory_mib: int = 2048
    retries: int = 3  # attempts = retries + 1
    timeout_seconds: int = 3600  # per attempt
    oss_endpoint: str = ""
    host_path: str = MOUNT  # the node's mount of the shared volume (NAS, OSS) when root is a path
    platform: str = "EC2"  # or FARGATE
    # A Secrets Manager secret (its ARN) whose JSON keys OSS_ACCESS_KEY_ID and
    # OSS_ACCESS_KEY_SECRET become the pods' variables; "" for none (a role or a volume).
    secret_arn: str = ""
    # The role Batch's agent uses to pull the image and read `secret_arn` (FARGATE needs one).
    execution_role_arn: str = ""


def check(o: Options) -> None:
    for name in ("files", "fan_in", "memory_mib"):
        layout.check_positive(name.replace("_", "-"), getattr(o, name), minimum=1)
    if not 0 <= o.retries < MAX_ATTEMPTS:
        raise ConfigError(f"--retries {o.retries}: Batch allows 1..{MAX_ATTEMPTS} attempts")
    if o.timeout_seconds < MIN_TIMEOUT_SECONDS:
        raise ConfigError(f"--timeout-seconds {o.timeout_seconds}: Batch's minimum is 60")
    if o.platform not in ("EC2", "FARGATE"):  # AWS's names (Alibaba's "Serverless Container"
        # is read by `workload migrate`, not written: botocore's model does not know it)
        raise ConfigError(f"--platform {o.platform!r}: expected EC2 or FARGATE")
    if (o.platform == "FARGATE" or o.secret_arn) and not o.execution_role_arn:
        raise ConfigError("--platform FARGATE and --secret-arn need --execution-role-arn")
    if o.platform == "FARGATE" and "://" not in o.root:
        raise ConfigError(
            f"--root {o.root!r}: FARGATE has no host volumes; use an s3:// or oss:// root"
        )
    plan = o.plan
    for level in range(1, plan.levels + 1):
        if plan.pods(level) > MAX_ARRAY_SIZE:
            raise ConfigError(
                f"level {level} has {plan.pods(level)} pods, over Batch's array size of "
                f"{MAX_ARRAY_SIZE}: raise --fan-in"
            )


def _pod_options(o: Options) -> list[str]:
    return ["--root", "Ref::root", "--op", "Ref::op", "--fan-in", str(o.fan_in)]


def _definition(o: Options, name: str, command: list[str]) -> dict:
    container: dict = {
        "image": o.image,
        "command": command,
        "resourceRequirements": [
            {"type": "VCPU", "value": o.vcpus},
            {"type": "MEMORY", "value": str(o.memory_mib)},
        ],
        "environment": [{"name": "OSS_ENDPOINT", "value": o.oss_endpoint}],
    }
    if o.execution_role_arn:
        container["executionRoleArn"] = o.execution_role_arn
    if o.secret_arn:  # by reference: the values never appear in the file
        container["secrets"] = [
            {"name": key, "valueFrom": f"{o.secret_arn}:{key}::"} for key in SECRET_KEYS
        ]
    if "://" not in o.root:
        container["volumes"] = [{"name": "workdir", "host": {"sourcePath": o.host_path}}]
        container["mountPoints"] = [{"sourceVolume": "workdir", "containerPath": MOUNT}]
    return {
        "jobDefinitionName": name,
        "type": "container",
        "parameters": {"root": o.root, "op": o.op},
        "containerProperties": container,
        "retryStrategy": retry_strategy(o.retries),
        "timeout": {"attemptDurationSeconds": o.timeout_seconds},
        "platformCapabilities": [o.platform],
    }


def retry_strategy(retries: int) -> dict:
    """The exit-code table as evaluateOnExit: the first matching rule decides."""
    return {
        "attempts": retries + 1,
        "evaluateOnExit": [
            {"onExitCode": str(EXIT_TRANSIENT), "action": "RETRY"},
            {"onExitCode": str(EXIT_EMISSARY), "action": "RETRY"},
            {"onStatusReason": "Host EC2*", "action": "RETRY"},  # a reclaimed or lost host
            {"onReason": "*", "action": "EXIT"},
        ],
    }


def render(o: Options) -> dict:
    """The Batch file: job definitions and the chained submissions of the whole tree."""
    check(o)
    plan = o.plan
    process = ["python3", "process.py", "Ref::level", "--level-pods", "Ref::pods"]
    final = ["python3", "merge.py", "0", "Ref::number", "--level", "Ref::level"]
    definitions = [
        _definition(o, "process-data", [*process, *_pod_options(o)]),
        _definition(o, "merge-data", [*final, *_pod_options(o)]),
    ]
    jobs: list[dict] = []
    for level in range(1, plan.levels + 1):
        pods = plan.pods(level)
        job: dict = {
            "jobName": f"process-data-l{level}",
            "jobQueue": o.job_queue,
            "jobDefinition": "process-data",
            "parameters": {"level": str(level), "pods": str(pods)},
        }
        if pods >= MIN_ARRAY_SIZE:
            job["arrayProperties"] = {"size": pods}
        else:  # one pod: a plain job of a definition with its index in the command
            job["jobDefinition"] = "process-data-one"
            if not any(d["jobDefinitionName"] == "process-data-one" for d in definitions):
                one = ["python3", "process.py", "0", "Ref::level", "--level-pods", "Ref::pods"]
                definitions.append(_definition(o, "process-data-one", [*one, *_pod_options(o)]))
        if jobs:
            job["dependsOn"] = [{"jobId": jobs[-1]["jobName"]}]
        jobs.append(job)
    final_job: dict = {
        "jobName": "merge-data",
        "jobQueue": o.job_queue,
        "jobDefinition": "merge-data",
        "parameters": {"number": str(plan.final_count), "level": str(plan.final_level)},
    }
    if jobs:
        final_job["dependsOn"] = [{"jobId": jobs[-1]["jobName"]}]
    return {"jobDefinitions": definitions, "jobs": [*jobs, final_job]}
