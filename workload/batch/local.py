"""A Batch file's jobs as the pods Batch would start, in order, run here by the same runner as
an Argo manifest's (argo/local.py): each child of an array job with its AWS_BATCH_JOB_ARRAY_INDEX,
the definition's command with `Ref::` parameters put in (the job's over the definition's
defaults), the environment and the container overrides, the definition's volumes mounted.

A dependency is kept as the whole earlier job (an N_TO_N child waits for its peer only on Batch;
here it waits for the whole array, which gives the same files). A SEQUENTIAL array runs one
child at a time. Anything outside the subset is refused by name (Unsupported, exit 78).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..argo.expand import Pod, SecretRef, check_fields
from ..argo.expr import Unsupported
from ..errors import UsageError

# Fields that change what a pod runs are modelled; those that do not (roles, network,
# platform, tags) are taken as they are. Anything else is refused.
_DEFINITION = {"jobDefinitionName", "type", "parameters", "containerProperties", "timeout"}
_DEFINITION |= {"retryStrategy", "platformCapabilities", "tags", "propagateTags"}
_DEFINITION |= {"schedulingPriority"}
_CONTAINER = {"image", "command", "resourceRequirements", "vcpus", "memory", "environment"}
_CONTAINER |= {"volumes", "mountPoints", "secrets", "executionRoleArn", "jobRoleArn", "user"}
_CONTAINER |= {"networkConfiguration", "runtimePlatform", "repositoryCredentials"}
_CONTAINER |= {"fargatePlatformConfiguration", "ephemeralStorage", "logConfiguration"}
_CONTAINER |= {"readonlyRootFilesystem"}
_JOB = {"jobName", "jobQueue", "jobDefinition", "parameters", "arrayProperties", "dependsOn"}
_JOB |= {"containerOverrides", "retryStrategy", "timeout", "tags", "propagateTags"}
_JOB |= {"shareIdentifier", "schedulingPriorityOverride"}
_OVERRIDES = {"command", "environment", "resourceRequirements", "vcpus", "memory"}
INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"


def definition_name(reference: str) -> str:
    """The name in `name`, `name:revision` or an ARN `...:job-definition/name:revision`."""
    return reference.rsplit("/", 1)[-1].split(":", 1)[0]


def command(argv: list[str], parameters: Mapping[str, str], what: str) -> list[str]:
    """`Ref::name` elements replaced by their parameter, as Batch does."""
    out = []
    for arg in argv:
        if arg.startswith("Ref::"):
            name = arg.removeprefix("Ref::")
            if name not in parameters:
                raise Unsupported(f"{what}: no parameter {name!r} for {arg!r}")
            arg = parameters[name]
        elif "Ref::" in arg:
            raise Unsupported(f"{what}: Ref:: inside the argument {arg!r}")
        out.append(str(arg))
    return out


def expand(document: dict) -> list[list[Pod]]:
    """The pods of every job of a Batch file, as waves in submission order."""
    from .model import check

    check(document)  # also: every request an object, every reference to an earlier job
    definitions = {d["jobDefinitionName"]: d for d in document["jobDefinitions"]}
    waves: list[list[Pod]] = []
    for job in document["jobs"]:
        name = job["jobName"]
        check_fields(job, _JOB, f"job {name!r}")
        definition = definitions.get(definition_name(job["jobDefinition"]))
        if definition is None:
            raise Unsupported(
                f"job {name!r}: job definition {job['jobDefinition']!r} is not in the file"
            )
        pods = _pods(job, definition)
        sequential = any(d.get("type") == "SEQUENTIAL" for d in job.get("dependsOn") or [])
        waves += [[pod] for pod in pods] if sequential else [pods]
    return waves


def _pods(job: dict, definition: dict) -> list[Pod]:
    what = f"job definition {definition['jobDefinitionName']!r}"
    check_fields(definition, _DEFINITION, what)
    if definition.get("type") != "container":
        raise Unsupported(f"{what}: type {definition.get('type')!r}, not container")
    container = definition.get("containerProperties") or {}
    check_fields(container, _CONTAINER, f"{what} containerProperties")
    overrides = job.get("containerOverrides") or {}
    check_fields(overrides, _OVERRIDES, f"job {job['jobName']!r} containerOverrides")
    parameters = {**(definition.get("parameters") or {}), **(job.get("parameters") or {})}
    argv = command(overrides.get("command") or container.get("command") or [], parameters, what)
    env: dict[str, str | SecretRef] = {
        e["name"]: e.get("value", "")
        for e in [*(container.get("environment") or []), *(overrides.get("environment") or [])]
    }
    for secret in container.get("secrets") or []:
        env[secret["name"]] = SecretRef(secret["valueFrom"], "")
    volumes = {v["name"] for v in container.get("volumes") or []}
    mounts = {}
    for mount in container.get("mountPoints") or []:
        if mount.get("sourceVolume") not in volumes:
            raise Unsupported(f"{what}: mount of undeclared volume {mount.get('sourceVolume')!r}")
        mounts[mount["containerPath"]] = mount["sourceVolume"]
    size = (job.get("arrayProperties") or {}).get("size")
    children: list[int | None] = list(range(size)) if size else [None]
    return [
        Pod(
            name=job["jobName"] if i is None else f"{job['jobName']}:{i}",
            template=definition["jobDefinitionName"],
            image=container.get("image", ""),
            argv=argv,
            env=env if i is None else {**env, INDEX: str(i)},
            working_dir=None,
            mounts=mounts,
        )
        for i in children
    ]


def load(path: Path) -> dict:
    """A Batch file: JSON or YAML, one document."""
    from ..argo.local import read_documents

    documents = read_documents(path)
    if len(documents) != 1:
        raise Unsupported(f"{path}: a Batch file is one document, not {len(documents)}")
    return documents[0]


def run_file(
    path: Path,
    *,
    volumes: Mapping[str, str],
    secrets: Mapping[str, str],
    parallelism: int = 2,
):
    """Every pod of the Batch file at `path`, run here in order: `volumes` maps a definition's
    volume name to the folder that stands for it, `secrets` a secret's valueFrom to its value."""
    from ..argo.local import image_workdir, mounted_folder, run

    if parallelism < 1:
        raise UsageError(f"--parallelism must be >= 1, got {parallelism}")
    waves = expand(load(path))
    folder = mounted_folder(waves, volumes)  # by the volume's name
    with image_workdir() as app:
        return run(
            waves,
            app,
            volume=folder,
            secrets={(k, ""): v for k, v in secrets.items()},
            workers=parallelism,
        )
