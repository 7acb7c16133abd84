"""A rendered Argo manifest expanded into the pods Argo's controller would create, in order.

`expand` reads a Workflow or WorkflowTemplate the way the controller does, for the subset our
manifests use (steps, dag and container templates, withSequence, withItems, `{{...}}` and
`{{=expr}}`, argo/expr.py), and raises Unsupported (exit 78) naming anything else: each pod's
exact argv, environment (Secret references kept as references), mounts and output
parameters, as waves that may start once the earlier waves have succeeded. argo/local.py
runs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .expr import Unsupported, render_value, substitute, substitute_all

# Fields understood; any other is refused. Retries, failFast, deadlines, GC, resources and
# security settings do not change what a pod runs.
_SPEC = {"entrypoint", "templates", "arguments", "volumes", "parallelism", "priority"}
_SPEC |= {"activeDeadlineSeconds", "podGC", "ttlStrategy", "serviceAccountName", "podMetadata"}
_SPEC |= {"securityContext"}
_TEMPLATE = {"name", "inputs", "outputs", "container", "steps", "dag", "parallelism"}
_TEMPLATE |= {"retryStrategy", "activeDeadlineSeconds", "podSpecPatch", "metadata", "failFast"}
_TEMPLATE |= {"nodeSelector"}
_CONTAINER = {"image", "command", "args", "workingDir", "env", "volumeMounts", "name"}
_CONTAINER |= {"securityContext", "resources", "imagePullPolicy"}
_STEP = {"name", "template", "arguments", "withSequence", "withItems"}
_TASK = _STEP | {"dependencies", "depends"}
_PARAMETER = {"name", "value", "default", "enum", "description"}


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str
    optional: bool = False


@dataclass
class Pod:
    name: str  # the node: step or task name, with "(i:item)" when fanned out
    template: str
    image: str
    argv: list[str]
    env: dict[str, str | SecretRef]
    working_dir: str | None
    mounts: dict[str, str]  # mountPath -> volume name
    pod_spec_patch: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # output parameter -> path in the pod
    output_defaults: dict[str, str] = field(default_factory=dict)  # valueFrom.default, if any


def check_fields(obj: Mapping, allowed: set[str], what: str) -> None:
    """Unsupported naming every field of `obj` outside `allowed`."""
    if unknown := sorted(set(obj) - allowed):
        raise Unsupported(f"{what}: unsupported field(s) {', '.join(unknown)}")


# -- expansion ---------------------------------------------------------------------------------
def _scalar(v, what: str) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str | int | float):
        return render_value(v) if isinstance(v, float) else str(v)
    raise Unsupported(f"{what}: expected a string or number, got {v!r}")


def _parameters(args: Mapping | None, what: str) -> dict[str, str]:
    """Name -> value (or default) of `arguments` or `inputs` parameters that have one."""
    check_fields(args or {}, {"parameters"}, what)
    out = {}
    for p in (args or {}).get("parameters") or []:
        check_fields(p, _PARAMETER, f"{what} parameter {p.get('name')!r}")
        if "value" in p or "default" in p:
            out[p["name"]] = _scalar(p.get("value", p.get("default")), f"{what} {p['name']}")
    return out


def expand(
    manifest: dict,
    parameters: dict[str, str] | None = None,
    templates: dict[str, dict] | None = None,
) -> list[list[Pod]]:
    """The pods of a Workflow or WorkflowTemplate in execution order, as waves: each pod may
    start once every pod of the earlier waves has succeeded. `parameters` acts as `argo submit
    -p`; `templates` resolves a Workflow's workflowTemplateRef by name."""
    if manifest.get("kind") not in ("Workflow", "WorkflowTemplate"):
        raise Unsupported(f"unsupported kind {manifest.get('kind')!r}")
    spec = manifest["spec"]
    if "workflowTemplateRef" in spec:
        check_fields(
            spec, {"workflowTemplateRef", "arguments", "entrypoint"}, "Workflow with a ref"
        )
        check_fields(spec["workflowTemplateRef"], {"name"}, "workflowTemplateRef")
        ref = spec["workflowTemplateRef"]["name"]
        known = templates or {}
        if known.get(ref, {}).get("kind") != "WorkflowTemplate":
            raise Unsupported(f"workflowTemplateRef {ref!r}: no such WorkflowTemplate given")
        base = known[ref]["spec"]
        given = {**_parameters(spec.get("arguments"), "arguments"), **(parameters or {})}
        spec = {**base, "entrypoint": spec.get("entrypoint", base["entrypoint"])}
        return expand({"kind": "WorkflowTemplate", "spec": spec}, given)
    check_fields(spec, _SPEC, "spec")
    declared = {p["name"]: p for p in (spec.get("arguments") or {}).get("parameters") or []}
    if unknown := sorted(set(parameters or {}) - set(declared)):
        raise Unsupported(f"parameters {unknown} are not declared; declared: {sorted(declared)}")
    values = {**_parameters(spec.get("arguments"), "arguments"), **(parameters or {})}
    for name, p in declared.items():
        if name not in values:
            raise Unsupported(f"workflow parameter {name!r} has no value")
        if "enum" in p and values[name] not in [_scalar(e, name) for e in p["enum"]]:
            raise Unsupported(f"parameter {name}={values[name]!r} is not one of {p['enum']}")
    scope = {f"workflow.parameters.{k}": v for k, v in values.items()}
    expansion = _Expansion({t["name"]: t for t in spec["templates"]}, spec.get("volumes") or [])
    return expansion.waves(spec["entrypoint"], {}, scope, [], "")


class _Expansion:
    def __init__(self, templates: dict[str, dict], volumes: list[dict]):
        self.templates, self.volumes = templates, {v["name"] for v in volumes}

    def waves(self, name: str, args: dict, scope: dict, stack: list, node: str):
        """Template `name` called with `args`; `scope` holds the workflow's variables."""
        if name not in self.templates or name in stack:
            raise Unsupported(f"template {name!r} is unknown or recursive (via {stack})")
        t = self.templates[name]
        check_fields(t, _TEMPLATE, f"template {name!r}")
        declared = {p["name"] for p in (t.get("inputs") or {}).get("parameters") or []}
        if unknown := sorted(set(args) - declared):
            raise Unsupported(f"template {name!r} has no inputs named {unknown}")
        defaults = _parameters(t.get("inputs"), f"template {name!r} inputs")
        values = {k: substitute(v, scope) for k, v in defaults.items()} | args
        if missing := sorted(declared - set(values)):
            raise Unsupported(f"template {name!r}: inputs.parameters {missing} not supplied")
        scope = {**scope, **{f"inputs.parameters.{k}": v for k, v in values.items()}}
        kind = [k for k in ("container", "steps", "dag") if k in t]
        if kind == ["container"]:
            return [[self.pod(substitute_all(t, scope), node or name)]]
        stack = [*stack, name]
        if kind == ["steps"]:  # a group's steps and their items run side by side
            groups = [[b for s in g for b in self.step(s, scope, stack, _STEP)] for g in t["steps"]]
            return [wave for group in groups for wave in _side_by_side([(0, b) for b in group])]
        if kind != ["dag"]:
            raise Unsupported(f"template {name!r}: expected exactly one of container, steps, dag")
        check_fields(t["dag"], {"tasks"}, f"dag {name!r}")
        tasks = {task["name"]: task for task in t["dag"]["tasks"]}
        start: dict[str, int] = {}
        end: dict[str, int] = {}
        branches: dict[str, list] = {}

        def place(task: str, path: tuple = ()) -> int:  # right after its last dependency
            if task in path:
                raise Unsupported(f"dependency cycle through task {task!r}")
            if task not in end:
                deps = _dependencies(tasks[task], tasks)
                start[task] = max((place(d, (*path, task)) for d in deps), default=0)
                branches[task] = self.step(tasks[task], scope, stack, _TASK)
                end[task] = start[task] + max(map(len, branches[task]), default=0)
            return end[task]

        for task in tasks:
            place(task)
        return _side_by_side([(start[n], b) for n in tasks for b in branches[n]])

    def step(self, step: dict, scope: dict, stack: list, allowed: set) -> list[list[list[Pod]]]:
        """One step or task: one branch of waves per item, or one branch without a loop."""
        check_fields(step, allowed, f"step {step.get('name')!r}")
        items: list[str | None] = [None]
        if "withSequence" in step:
            items = [*_sequence(substitute_all(step["withSequence"], scope), step["name"])]
        elif "withItems" in step:
            items = [_scalar(i, f"withItems of {step['name']!r}") for i in step["withItems"]]
        workflow = {k: v for k, v in scope.items() if k.startswith("workflow.")}
        branches = []
        for i, item in enumerate(items):
            here = scope if item is None else {**scope, "item": item}
            args = _parameters(
                substitute_all(step.get("arguments"), here), f"step {step['name']!r}"
            )
            node = step["name"] if item is None else f"{step['name']}({i}:{item})"
            branches.append(self.waves(step["template"], args, workflow, stack, node))
        return branches

    def pod(self, t: dict, node: str) -> Pod:
        c = t["container"]
        check_fields(c, _CONTAINER, f"container of {t['name']!r}")
        env: dict[str, str | SecretRef] = {}
        for e in c.get("env") or []:
            check_fields(e, {"name", "value", "valueFrom"}, f"env {e['name']}")
            check_fields(e.get("valueFrom") or {}, {"secretKeyRef"}, f"env {e['name']} valueFrom")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            value = _scalar(e.get("value", ""), e["name"])
            env[e["name"]] = (
                SecretRef(ref["name"], ref["key"], ref.get("optional", False)) if ref else value
            )
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
        if undeclared := sorted(set(mounts.values()) - self.volumes):
            raise Unsupported(f"template {t['name']!r} mounts undeclared volumes {undeclared}")
        check_fields(t.get("outputs") or {}, {"parameters"}, f"outputs of {t['name']!r}")
        outputs, defaults = {}, {}
        for p in (t.get("outputs") or {}).get("parameters") or []:
            check_fields(
                p.get("valueFrom") or {}, {"path", "default"}, f"output {p['name']!r} valueFrom"
            )
            outputs[p["name"]] = p["valueFrom"]["path"]
            if "default" in p["valueFrom"]:
                defaults[p["name"]] = _scalar(p["valueFrom"]["default"], f"output {p['name']!r}")
        argv, workdir = [*c.get("command", []), *c.get("args", [])], c.get("workingDir")
        return Pod(
            node,
            t["name"],
            c["image"],
            argv,
            env,
            workdir,
            mounts,
            t.get("podSpecPatch"),
            outputs,
            defaults,
        )


def _side_by_side(placed: list[tuple[int, list[list[Pod]]]]) -> list[list[Pod]]:
    """Branches of waves, each starting at a wave offset, merged into one list of waves."""
    waves: list[list[Pod]] = [[] for _ in range(max((o + len(b) for o, b in placed), default=0))]
    for offset, branch in placed:
        for i, wave in enumerate(branch):
            waves[offset + i] += wave
    return waves


def _dependencies(task: dict, tasks: dict) -> list[str]:
    deps = list(task.get("dependencies") or [])
    for term in task["depends"].split("&&") if "depends" in task else []:
        term = term.strip().removesuffix(".Succeeded")  # without `when`, nothing is skipped
        if not re.fullmatch(r"[\w-]+", term):  # ||, !, .Failed...: conditions, not order
            raise Unsupported(f"task {task['name']!r}: unsupported depends {task['depends']!r}")
        deps.append(term)
    if unknown := sorted(set(deps) - set(tasks)):
        raise Unsupported(f"task {task['name']!r} depends on unknown tasks {unknown}")
    return deps


def _sequence(seq: dict, step: str) -> list[str]:
    check_fields(seq, {"count", "start", "end"}, f"withSequence of {step!r}")
    if ("count" in seq) == ("end" in seq):
        raise Unsupported(f"withSequence of {step!r}: give exactly one of count and end")
    n = {}
    for key in seq:  # Argo: strconv.ParseInt(..., 10, 64); "32.5" fails the step
        n[key] = _scalar(seq[key], key)
        if not re.fullmatch(r"[+-]?[0-9]+", n[key]) or (key == "count" and int(n[key]) < 0):
            raise Unsupported(f"withSequence {key} {n[key]!r} of {step!r} is not an integer >= 0")
    start = int(n.get("start", 0))
    end = start + int(n["count"]) - 1 if "count" in n else int(n["end"])
    by = 1 if start <= end or "count" in n else -1  # Argo counts down from start to end
    return [str(i) for i in range(start, end + by, by)]
