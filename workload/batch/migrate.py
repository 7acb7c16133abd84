"""`workload migrate FILE`: Batch job definitions and submissions, converted to one Argo Workflow
(through Hera) that runs the same pods in the same order.

The input is a Batch file (build.py's shape), or the seed's shape: its job definitions and job
submissions as a list of objects (JSON, YAML, or several JSON objects one after another). A
dependency names an earlier job by its jobName, or by the jobId it was given when submitted
(a submission's own `jobId` field, as the seed prints it after `batch submit`).

How each field maps:
- a job definition -> a container template of that name; `Ref::name` in its command -> an
  input parameter (its default from the definition's parameters, the job's value passed);
- an array job -> a DAG task with withSequence over its size, the index in
  AWS_BATCH_JOB_ARRAY_INDEX as on Batch; dependsOn -> the task's dependencies; N_TO_N ->
  one task per index, each depending on the same index of the job it names;
- resourceRequirements (or vcpus and memory) -> requests and limits; environment -> env;
  volumes and mountPoints -> a PersistentVolumeClaim (--claim) and its mounts;
- retryStrategy.attempts -> retryStrategy.limit (attempts - 1); evaluateOnExit -> an expression
  that retries exactly when Batch would (the first matching rule decides, no match retries;
  onExitCode against lastRetry.exitCode, onReason and onStatusReason against lastRetry.message);
- timeout.attemptDurationSeconds -> the template's activeDeadlineSeconds;
- platformCapabilities FARGATE or "Serverless Container" -> Alibaba ECI's sizing annotation
  (and assignPublicIp ENABLED -> its elastic-IP annotation); runtimePlatform -> a nodeSelector
  on kubernetes.io/arch and kubernetes.io/os; the jobQueue -> a pod label; secrets (by ARN) ->
  the key of the variable's name in one Kubernetes Secret (--secret: create it with those keys).
Anything else that holds a value (roles, network settings, secrets by ARN, SEQUENTIAL arrays,
...) is listed, every one, in one error (exit 78), or with `lenient` in a comment block at the
top of the output; empty values ({} or []) map to nothing and are not listed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..argo.expr import Unsupported
from ..errors import ConfigError
from .local import INDEX, definition_name

ECI_PLATFORMS = ("FARGATE", "Serverless Container")
ARCH = {"X86_64": "amd64", "ARM64": "arm64"}
# Fields that map (the rest of the module says how); any other non-empty field is unmappable.
_DEFINITION = {"jobDefinitionName", "type", "parameters", "containerProperties", "timeout"}
_DEFINITION |= {"retryStrategy", "platformCapabilities"}
_CONTAINER = {"image", "command", "resourceRequirements", "vcpus", "memory", "environment"}
_CONTAINER |= {"volumes", "mountPoints", "runtimePlatform", "networkConfiguration", "secrets"}
_JOB = {"jobName", "jobQueue", "jobDefinition", "parameters", "arrayProperties", "dependsOn"}
_JOB |= {"containerOverrides", "retryStrategy", "timeout"}


@dataclass
class Conversion:
    manifest: Any  # a hera Workflow
    unmapped: list[str] = field(default_factory=list)  # "what.field = value", one per field

    def to_yaml(self) -> str:
        text = self.manifest.to_yaml()
        if not self.unmapped:
            return text
        lines = [
            "# workload migrate --lenient: these Batch fields have no mapping and are left out:"
        ]
        lines += [f"#   {u}" for u in self.unmapped]
        return "\n".join(lines) + "\n" + text


def read(path: Path) -> dict:
    """A Batch file, or the seed's list of definitions and submissions, as a Batch file."""
    from ..argo.local import read_documents

    objects = read_documents(path)
    if len(objects) == 1 and isinstance(objects[0], dict) and "jobs" in objects[0]:
        return objects[0]
    if len(objects) == 1 and isinstance(objects[0], list):
        objects = objects[0]
    document: dict = {"jobDefinitions": [], "jobs": [], "submitted": {}}
    for obj in objects:
        if isinstance(obj, dict) and "jobDefinitionName" in obj:
            document["jobDefinitions"].append(obj)
        elif isinstance(obj, dict) and "jobName" in obj:
            job = dict(obj)
            if "jobId" in job:  # the id it was given when submitted
                document["submitted"][job["jobName"]] = job.pop("jobId")
            document["jobs"].append(job)
        else:
            raise Unsupported(f"{path}: an object that is neither a job definition nor a job")
    return document


def _glob(pattern, *, digits: bool = False) -> str:
    """A Batch pattern (a trailing * at most) as an anchored regex in the subset Argo's `matches`
    and ours agree on. `digits`: an exit code's, whose * stands for digits only (Argo's exitCode
    is "-1" for a pod that never exited, which no onExitCode rule of Batch matches)."""
    body = pattern.removesuffix("*") if isinstance(pattern, str) else None
    allowed = r"[0-9]*" if digits else r"[A-Za-z0-9 .:_()-]*"
    if body is None or "*" in body or not re.fullmatch(allowed, body):
        raise Unsupported(f"evaluateOnExit pattern {pattern!r}: only a trailing * is mapped")
    star = ("[0-9]*" if digits else ".*") if pattern.endswith("*") else ""
    return "^" + body.replace(".", "[.]").replace("(", "[(]").replace(")", "[)]") + star + "$"


def retry_expression(rules: list[dict]) -> str | None:
    """Argo's retryStrategy.expression for Batch's evaluateOnExit: retry when the first
    matching rule says RETRY, or when no rule matches. None: always retry (no rules).
    onExitCode is matched against lastRetry.exitCode, onReason or onStatusReason (one per rule:
    Argo has one message for both) against lastRetry.message."""
    if not rules:
        return None
    matches: list[tuple[str, str]] = []
    terms: list[str] = []
    catch_all = False
    for rule in rules:
        action = str(rule.get("action", "")).upper() if isinstance(rule, dict) else ""
        reasons = [k for k in ("onReason", "onStatusReason") if k in rule] if action else []
        if action not in ("RETRY", "EXIT") or set(rule) - {"onExitCode", *reasons, "action"}:
            raise Unsupported(f"evaluateOnExit rule {rule}: unsupported")
        if len(reasons) > 1 or not (reasons or "onExitCode" in rule):
            raise Unsupported(f"evaluateOnExit rule {rule}: one of onReason, onStatusReason")
        parts = []
        if "onExitCode" in rule:
            parts.append(f"lastRetry.exitCode matches '{_glob(rule['onExitCode'], digits=True)}'")
        for key in reasons:
            parts.append(f"lastRetry.message matches '{_glob(rule[key])}'")
        match = parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"
        earlier_exits = [f"!({m})" for m, a in matches if a == "EXIT"]
        if not catch_all and action == "RETRY":
            terms.append(" && ".join([*earlier_exits, match]))
        matches.append((match, action))
        catch_all |= match == "lastRetry.message matches '^.*$'"  # every later rule is dead
    if not catch_all:
        terms.append(" && ".join(f"!({m})" for m, _ in matches))
    return " || ".join(f"({t})" if " && " in t else t for t in terms) if terms else "false"


def _eci_specs(cpu: str, memory_mib: str) -> str:
    gib = float(memory_mib) / 1024
    return f"{float(cpu):g}-{gib:g}Gi"


def convert(
    document: dict,
    *,
    claim: str = "pvc-oss",
    secret: str = "oss-credentials",
    lenient: bool = False,
) -> Conversion:
    """The Workflow that runs `document`'s jobs (a Batch file, as `read` gives it)."""
    try:
        import hera  # noqa: F401
    except ImportError:
        raise ConfigError(
            "workload migrate writes through Hera: pip install 'workload[argo]'"
        ) from None
    from hera.workflows import DAG, Workflow
    from hera.workflows import models as m

    _check_shape(document)
    unmapped: list[str] = []
    definitions = {d["jobDefinitionName"]: d for d in document.get("jobDefinitions") or []}
    ids = {v: k for k, v in (document.get("submitted") or {}).items()}
    # A definition's template for its array jobs (with the index) and for its plain jobs
    uses = {(definition_name(j["jobDefinition"]), _size(j) > 0) for j in document["jobs"]}
    for name, _ in uses:
        if name not in definitions:
            raise Unsupported(f"job definition {name!r} is used but not in the file")
    volumes: dict[str, Any] = {}
    taken: set[str] = {"main"}  # template names; task names are a namespace of their own
    task_names: set[str] = set()
    names = {
        (n, a): _name(n if a or (n, True) not in uses else f"{n}-single", taken)
        for n, a in sorted(uses, key=lambda u: (u[0], not u[1]))
    }
    with Workflow(generate_name="migrated-", entrypoint="main") as workflow:
        templates = {
            (name, array): _template(
                definitions[name],
                array=array,
                both=(name, not array) in uses,
                claim=claim,
                secret=secret,
                template_names=names,
                volumes=volumes,
                unmapped=unmapped,
            )
            for name, array in sorted(uses)
        }
        with DAG(name="main"):
            tasks: dict[str, list[str]] = {}  # jobName -> its task per index
            for job in document["jobs"]:
                if job["jobName"] in tasks:
                    raise Unsupported(f"job {job['jobName']!r} is in the file twice")
                tasks[job["jobName"]] = _task(job, templates, tasks, ids, unmapped, task_names)
    workflow.volumes = list(volumes.values()) or None
    queues = sorted({_label(j["jobQueue"]) for j in document["jobs"] if j.get("jobQueue")})
    if queues:
        workflow.pod_metadata = m.Metadata(labels={"workload.batch/job-queue": queues[0]})
        unmapped += [f"jobQueue {q!r} (pods are labelled {queues[0]!r})" for q in queues[1:]]
    if unmapped and not lenient:
        raise Unsupported(f"{len(unmapped)} Batch fields have no mapping: " + "; ".join(unmapped))
    from ..argo.validate import validate

    problems = validate(workflow.to_dict())
    if problems:  # a name or value Argo would refuse, that the mapping did not foresee
        raise Unsupported(f"the converted Workflow would be refused: {problems[0]}")
    return Conversion(workflow, unmapped)


def _check_shape(document: Any) -> None:
    """Refuse, in one line, a document that is not definitions and jobs (before any lookup)."""
    if not isinstance(document, dict):
        raise Unsupported("a Batch file is an object of jobDefinitions and jobs")
    definitions, jobs = document.get("jobDefinitions"), document.get("jobs")
    if not isinstance(definitions, list) or not definitions:
        raise Unsupported("no job definitions: jobDefinitions must be a list of them")
    if not isinstance(jobs, list) or not jobs:
        raise Unsupported("no jobs: jobs must be a list of SubmitJob requests")
    for d in definitions:
        if not isinstance(d, dict) or not isinstance(d.get("jobDefinitionName"), str):
            raise Unsupported(f"a job definition without a jobDefinitionName: {str(d)[:80]}")
        if d.get("type") != "container":
            raise Unsupported(
                f"job definition {d['jobDefinitionName']!r}: type {d.get('type')!r}, not container"
            )
    for j in jobs:
        if not isinstance(j, dict) or not all(
            isinstance(j.get(k), str) for k in ("jobName", "jobDefinition")
        ):
            raise Unsupported(f"a job without a jobName and a jobDefinition: {str(j)[:80]}")
        for dep in j.get("dependsOn") or []:
            if not isinstance(dep, dict):
                raise Unsupported(f"job {j['jobName']!r}: a dependsOn entry {dep!r}")


def _name(text: str, taken: set[str]) -> str:
    """A DAG task or template name Argo takes (lowercase letters, digits and dashes, starting
    with a letter), not yet taken."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "job"
    name = name if name[0].isalpha() else f"job-{name}"
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}-{n}", n + 1
    taken.add(unique)
    return unique


def _size(job: dict) -> int:
    return int((job.get("arrayProperties") or {}).get("size") or 0)


def _leftovers(obj: dict, allowed: set[str], what: str, unmapped: list[str]) -> None:
    for key, value in obj.items():
        if key not in allowed and value not in ({}, [], "", None):
            unmapped.append(f"{what}.{key} = {json.dumps(_masked(value))}")


def _masked(value: Any) -> Any:
    """`value` with every environment entry's value masked: listed fields may hold secrets."""
    if isinstance(value, dict):
        if set(value) == {"name", "value"}:
            return {"name": value["name"], "value": "***"}
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _template(
    d: dict,
    *,
    array: bool,
    both: bool,
    claim: str,
    secret: str,
    template_names: dict,
    volumes: dict,
    unmapped: list,
):
    """The container template of job definition `d` (for array children when `array`)."""
    from hera.workflows import Container, Env, Parameter, RetryStrategy, SecretEnv
    from hera.workflows import models as m

    name = d["jobDefinitionName"]
    what = f"jobDefinition {name!r}"
    first = not (array and both)  # each field is listed once, from the first of two templates
    if first:
        _leftovers(d, _DEFINITION, what, unmapped)
    c = d.get("containerProperties") or {}
    if first:
        _leftovers(c, _CONTAINER, f"{what}.containerProperties", unmapped)
    defaults = dict(d.get("parameters") or {})
    command = [str(a) for a in c.get("command") or []]
    if inside := [a for a in command if "Ref::" in a and not a.startswith("Ref::")]:
        raise Unsupported(f"{what}: Ref:: inside the argument {inside[0]!r}")
    refs = list(dict.fromkeys(a.removeprefix("Ref::") for a in command if a.startswith("Ref::")))
    inputs = [
        Parameter(name=r, default=defaults[r]) if r in defaults else Parameter(name=r) for r in refs
    ]
    argv = ["{{inputs.parameters." + a[5:] + "}}" if a.startswith("Ref::") else a for a in command]
    env: list = [Env(name=e["name"], value=e.get("value", "")) for e in c.get("environment") or []]
    env += [  # a secret by ARN -> the key of its variable's name in one Kubernetes Secret
        SecretEnv(name=s["name"], secret_name=secret, secret_key=s["name"])
        for s in c.get("secrets") or []
    ]
    if array:  # Batch sets the index for the children of an array job only
        inputs.append(Parameter(name="index"))
        env.append(Env(name=INDEX, value="{{inputs.parameters.index}}"))
    requirements = {r["type"]: r["value"] for r in c.get("resourceRequirements") or []}
    cpu = requirements.pop("VCPU", None) or (str(c["vcpus"]) if "vcpus" in c else None)
    memory = requirements.pop("MEMORY", None) or (str(c["memory"]) if "memory" in c else None)
    if first:
        unmapped += [f"{what}.resourceRequirements {k} = {v}" for k, v in requirements.items()]
    resources: dict[str, Any] = {}  # hera's Quantity: the string form is what it writes
    if cpu:
        resources["cpu"] = cpu
    if memory:
        resources["memory"] = f"{int(float(memory))}Mi"
    for v in c.get("volumes") or []:
        source = m.PersistentVolumeClaimVolumeSource(claim_name=claim)
        volumes[v["name"]] = m.Volume(name=v["name"], persistent_volume_claim=source)
    mounts = [
        m.VolumeMount(
            name=p["sourceVolume"], mount_path=p["containerPath"], read_only=p.get("readOnly")
        )
        for p in c.get("mountPoints") or []
    ]
    retry = d.get("retryStrategy") or {}
    strategy = None
    if retry.get("attempts", 1) > 1:
        strategy = RetryStrategy(
            limit=str(retry["attempts"] - 1),
            retry_policy="Always",
            expression=retry_expression(retry.get("evaluateOnExit") or []),
        )
    platforms = d.get("platformCapabilities") or []
    annotations = {}
    eci = any(p in ECI_PLATFORMS for p in platforms)
    if eci and cpu and memory:
        annotations["k8s.aliyun.com/eci-use-specs"] = _eci_specs(cpu, memory)
    network = dict(c.get("networkConfiguration") or {})
    if network.pop("assignPublicIp", "DISABLED") == "ENABLED":
        if eci:  # an elastic IP per ECI pod
            annotations["k8s.aliyun.com/eci-with-eip"] = "true"
        elif first:
            unmapped.append(f'{what}.networkConfiguration.assignPublicIp = "ENABLED"')
    if network and first:
        unmapped.append(f"{what}.networkConfiguration = {json.dumps(network)}")
    if first:
        unmapped += [
            f"{what}.platformCapabilities {p!r}"
            for p in platforms
            if p not in (*ECI_PLATFORMS, "EC2")
        ]
    platform = c.get("runtimePlatform") or {}
    selector = {}
    if "cpuArchitecture" in platform:
        arch = platform["cpuArchitecture"]
        selector["kubernetes.io/arch"] = ARCH.get(arch, arch.lower())
    if "operatingSystemFamily" in platform:
        selector["kubernetes.io/os"] = platform["operatingSystemFamily"].lower()
    return Container(
        name=template_names[name, array],
        image=c.get("image"),
        command=argv[:1],
        args=argv[1:],
        inputs=inputs,
        env=env,
        resources=m.ResourceRequirements(requests=resources, limits=resources)
        if resources
        else None,
        volume_mounts=mounts or None,
        retry_strategy=strategy,
        active_deadline_seconds=(d.get("timeout") or {}).get("attemptDurationSeconds"),
        annotations=annotations or None,
        node_selector=selector or None,
    )


def _task(
    job: dict, templates: dict, tasks: dict, ids: dict, unmapped: list, taken: set[str]
) -> list[str]:
    """The DAG task (or tasks, one per index under N_TO_N) of one job; its task per index."""
    from hera.workflows import models as m

    name, what = job["jobName"], f"job {job['jobName']!r}"
    _leftovers(job, _JOB, what, unmapped)
    overrides = job.get("containerOverrides") or {}
    _leftovers(overrides, set(), f"{what}.containerOverrides", unmapped)
    for key in ("retryStrategy", "timeout"):
        if job.get(key):
            unmapped.append(f"{what}.{key} = {json.dumps(job[key])} (the definition's is kept)")
    size = _size(job)
    template = templates[definition_name(job["jobDefinition"]), size > 0]
    declared = {p.name for p in template.inputs or []}
    arguments = {}
    for key, value in (job.get("parameters") or {}).items():
        if key in declared:
            arguments[key] = str(value)
        else:  # Batch ignores it too, but it may be a mistake: say so
            unmapped.append(f"{what}.parameters.{key} (no Ref::{key} in the command)")
    whole, per_index = [], []
    for dep in job.get("dependsOn") or []:
        if dep.get("type") == "SEQUENTIAL":  # its own children, one at a time
            unmapped.append(f"{what}.dependsOn type SEQUENTIAL (its children one at a time)")
            if "jobId" not in dep:
                continue
        target = ids.get(dep.get("jobId"), dep.get("jobId"))
        if target not in tasks:
            raise Unsupported(f"{what}: dependsOn {dep.get('jobId')!r} is no earlier job")
        if dep.get("type") == "N_TO_N" and len(tasks[target]) == size and size:
            per_index.append(target)
        else:  # a plain dependency, or N_TO_N on a job of another size: all of it
            whole += list(dict.fromkeys(tasks[target]))
    task = _name(name, taken)
    if per_index:
        if not size:
            raise Unsupported(f"{what}: an N_TO_N dependency, but the job is no array")
        names = []
        for i in range(size):
            mine = [tasks[t][i] for t in per_index]
            deps = list(dict.fromkeys(whole + mine)) or None
            names.append(_name(f"{task}-{i}", taken))
            template(name=names[-1], arguments={**arguments, "index": str(i)}, dependencies=deps)
        return names
    where: dict = {}
    if size:
        arguments["index"] = "{{item}}"
        where["with_sequence"] = m.Sequence(count=m.IntOrString(str(size)))
    template(name=task, arguments=arguments, dependencies=whole or None, **where)
    return [task] * max(size, 1)


def _label(value: str) -> str:
    """A Kubernetes label value: the queue's name (its ARN's last part), 63 characters at most."""
    name = value.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:63].strip("-_.") or "queue"
