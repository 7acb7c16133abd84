"""Offline validator for Argo Workflows manifests (Workflow and WorkflowTemplate).

``validate(doc)`` returns each problem as one line led by a JSON-path-like location, e.g.
``spec.templates[2].retryStategy: unknown field``; ``[]`` means valid. Two layers:

1. Structural, against the CRD's openAPIV3Schema, strictly: unknown fields are rejected in every
   object schema without ``x-kubernetes-preserve-unknown-fields``, a YAML int is not a string,
   ``null`` is rejected unless nullable. The top-level ``metadata`` (only ``type: object`` in the
   CRDs) is checked against ``OBJECT_META``. Not checked: CEL rules, list-type uniqueness.
2. Semantic, what Argo's controller checks: see ``_check_semantics``.
3. Optional (``validate_file(path, restricted_pods=True)``, on in ``python -m workload.argo
   validate``): ``pod_security``, the pod of each container template against the Pod Security
   Standard "restricted".

The schemas are vendored in ``workload/argo/schemas`` from Argo's full CRDs (argo-workflows v4.1.2,
commit f016ad89, Apache-2.0), descriptions stripped and gzipped (50 KB instead of 5.5 MB of
YAML; about 20 ms to load); ``python -m workload.argo.schemas.vendor DIR`` rewrites them.
CLI: ``python -m workload.argo.validate FILE...``.
"""

import functools
import gzip
import json
import math
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .pod import pod_spec
from .security import restricted

API_VERSION = "argoproj.io/v1alpha1"
CRD_FILES = {kind: f"argoproj.io_{kind.lower()}s.yaml" for kind in ("Workflow", "WorkflowTemplate")}
TEMPLATE_TYPES: tuple[str, ...] = (
    "container",
    "containerSet",
    "steps",
    "script",
    "resource",
    "dag",
    "suspend",
)
TEMPLATE_TYPES += ("data", "http", "plugin")
LOOPS = ("withItems", "withParam", "withSequence")
DEPENDS_RESULTS: tuple[str, ...] = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
)
DEPENDS_RESULTS += ("AnySucceeded", "AllFailed")
INT_RANGES: dict[str, tuple[float, float]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}

_STR = {"type": "string"}
_DNS_NAME = {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
_SERVER_SET: tuple[str, ...] = (
    "uid",
    "resourceVersion",
    "generation",
    "selfLink",
    "managedFields",
    "finalizers",
)
_SERVER_SET += ("ownerReferences", "creationTimestamp", "deletionTimestamp")
OBJECT_META = {
    "type": "object",
    "properties": {
        **{key: {"nullable": True} for key in _SERVER_SET},  # set by the API server: any value
        **{key: _DNS_NAME for key in ("name", "namespace")},
        "generateName": {"type": "string", "pattern": r"^[a-z0-9][-a-z0-9.]*$"},
        "labels": {"type": "object", "additionalProperties": _STR},
        "annotations": {"type": "object", "additionalProperties": _STR},
    },
}
_KINDS: tuple[tuple[Any, str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
)
_KINDS += (((str, date), "string"), (list, "array"), (dict, "object"))
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DEPENDS_TOKEN = re.compile(r"&&|\|\||[!()]|[^\s&|!()]+")


SCHEMAS = Path(__file__).resolve().parent / "schemas"


@functools.cache
def schema_for(kind: str) -> dict:
    """The CRD's openAPIV3Schema for ``kind`` (shared and cached: do not mutate it), from the
    vendored copy (``workload/argo/schemas``, descriptions stripped)."""
    if kind not in CRD_FILES:
        raise ValueError(f"no CRD for kind {kind!r} (known: {', '.join(CRD_FILES)})")
    return json.loads(gzip.decompress((SCHEMAS / f"{kind}.json.gz").read_bytes()))


def _key(path: str, key) -> str:
    key = str(key)
    if re.fullmatch(r"[A-Za-z_][-\w]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _kind(value) -> str:
    return next((name for py, name in _KINDS if isinstance(value, py)), type(value).__name__)


def _check(value, schema: dict, path: str, errs: list[str]) -> None:
    """Append to errs every way value breaks the structural schema."""
    kind, alternatives = _kind(value), schema.get("anyOf", [schema])
    types = [alt["type"] for alt in alternatives if "type" in alt]
    if schema.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    if value is None:
        if not schema.get("nullable"):
            errs.append(f"{path}: null is not allowed")
        return
    if types and kind not in types and not (kind == "integer" and "number" in types):
        errs.append(f"{path}: expected {' or '.join(types)}, got {kind} {repr(value)[:40]}")
        return
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if kind == "string":
        text = str(value)
        if "pattern" in schema and not re.search(schema["pattern"], text):
            errs.append(f"{path}: {text[:60]!r} does not match pattern {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(text) <= schema.get("maxLength", math.inf):
            errs.append(f"{path}: length {len(text)} is out of bounds")
    elif kind in ("integer", "number"):
        low, high = INT_RANGES.get(str(schema.get("format")), (-math.inf, math.inf))
        low, high = max(low, schema.get("minimum", low)), min(high, schema.get("maximum", high))
        if not low <= value <= high:
            errs.append(f"{path}: {value} is outside [{low}, {high}]")
    elif kind == "array":
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", math.inf):
            errs.append(f"{path}: {len(value)} items is out of bounds")
        for i, item in enumerate(value if "items" in schema else []):
            _check(item, schema["items"], f"{path}[{i}]", errs)
    elif kind == "object":
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", False)
        for name in schema.get("required", []):
            if name not in value:
                errs.append(f"{_key(path, name)}: required field missing")
        for name, item in value.items():
            if name in props or isinstance(extra, dict):
                _check(item, props.get(name, extra), _key(path, name), errs)
            elif not (extra is True or schema.get("x-kubernetes-preserve-unknown-fields")):
                errs.append(f"{_key(path, name)}: unknown field")


def _dig(node, *keys):
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _list(node) -> list:
    return node if isinstance(node, list) else []


def _dicts(node) -> list[dict]:
    return [item for item in _list(node) if isinstance(item, dict)]


def _indexed(node, path: str) -> list[tuple[dict, str]]:
    """The dict items of a list, each with its path."""
    return [(item, f"{path}[{i}]") for i, item in enumerate(_list(node)) if isinstance(item, dict)]


def _name(node, key: str = "name") -> str | None:
    """node[key] if it is a non-empty string (structural errors are reported elsewhere)."""
    value = _dig(node, key)
    return value if isinstance(value, str) and value else None


def _strings(node, path: str, skip: frozenset = frozenset()):
    """Every string below node, with its path; keys in skip are not descended into."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, item in node.items():
            if key not in skip:
                yield from _strings(item, _key(path, key), skip)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _strings(item, f"{path}[{i}]", skip)


def _check_refs(node, path: str, scope: str, declared: set, where: str, errs, skip=frozenset()):
    """{{scope.parameters.X}}, also inside {{= expressions }} and as ['X'], must be declared."""
    for at, text in _strings(node, path, skip):
        for block in re.findall(r"{{(.*?)}}", text, re.S):
            word = r"\w+" if block.lstrip().startswith("=") else r"[-\w]+"
            ref = rf"(?<![\w.]){scope}\.parameters(?:\.({word})|\[\s*['\"]([^'\"]+)['\"]\s*\])"
            for name in (dotted or indexed for dotted, indexed in re.findall(ref, block)):
                if name not in declared:
                    errs.append(
                        f"{at}: {{{{{scope}.parameters.{name}}}}} is not declared in {where}"
                    )


def _check_args(template: dict, args, path: str, errs: list[str]) -> None:
    """Input parameters without value/default/valueFrom must be passed by the caller."""
    supplied = {_name(p) for p in _dicts(_dig(args, "parameters"))}
    for param in _dicts(_dig(template, "inputs", "parameters")):
        if not {"value", "default", "valueFrom"} & param.keys() and _name(param) not in supplied:
            errs.append(f"{path}: {template['name']}.inputs.parameters.{_name(param)} not supplied")


def _check_call(holder: dict, path: str, templates: dict, errs: list[str]) -> None:
    """A step or dag task: what it calls, with which arguments, over which loop."""
    kinds = [k for k in ("template", "templateRef", "inline") if holder.get(k)]
    if len(kinds) != 1:
        errs.append(f"{path}: needs exactly one of template, templateRef, inline (has {kinds})")
    if (name := _name(holder, "template")) and name not in templates:
        errs.append(f"{path}.template: template {name!r} is not defined in this manifest")
    elif name:
        _check_args(templates[name], holder.get("arguments"), f"{path}.arguments", errs)
    for i, param in enumerate(_list(_dig(holder, "arguments", "parameters"))):
        if isinstance(param, dict) and not {"value", "valueFrom"} & param.keys():
            errs.append(f"{path}.arguments.parameters[{i}]: value or valueFrom is required")
    if len([k for k in LOOPS if holder.get(k) not in (None, "", [])]) > 1:
        errs.append(f"{path}: only one of {', '.join(LOOPS)} may be set")
    seq = holder.get("withSequence")
    if isinstance(seq, dict) and ("count" in seq) == ("end" in seq):
        errs.append(f"{path}.withSequence: needs exactly one of count or end")


def _parse_depends(expr: str, path: str, errs: list[str]) -> list[str]:
    """Task names in a depends expression such as "(A.Succeeded || B) && !C.Failed"."""
    if leftover := _DEPENDS_TOKEN.sub("", expr).strip():
        errs.append(f"{path}: cannot parse {leftover!r} in {expr!r}")
    tasks = []
    for token in _DEPENDS_TOKEN.findall(expr):
        if token not in ("&&", "||", "!", "(", ")"):
            task, _, result = token.partition(".")
            if result and result not in DEPENDS_RESULTS:
                errs.append(f"{path}: unknown result {token!r} (use {', '.join(DEPENDS_RESULTS)})")
            tasks.append(task)
    return tasks


def _check_dag(tasks: list[tuple[dict, str]], path: str, errs: list[str]) -> None:
    by_name = {_name(task): task for task, _ in tasks}
    using_depends = any(task.get("depends") for task, _ in tasks)
    graph: dict[str, set[str]] = {}
    for task, at in tasks:
        if using_depends and task.get("dependencies"):
            errs.append(f"{at}: cannot mix 'depends' and 'dependencies' in one dag")
        listed = _list(task.get("dependencies"))
        deps = [(str(d), f"{at}.dependencies[{i}]") for i, d in enumerate(listed)]
        if isinstance(expr := task.get("depends"), str):
            deps += [(d, f"{at}.depends") for d in _parse_depends(expr, f"{at}.depends", errs)]
        if deps and str(_name(task))[:1].isdigit():
            errs.append(f"{at}.name: cannot begin with a digit when the task has dependencies")
        for dep, where in deps:
            if dep not in by_name:
                errs.append(f"{where}: task {dep!r} is not defined in this dag")
        graph[str(_name(task))] = {dep for dep, _ in deps if dep in by_name}
    done: set = set()
    while ready := [node for node, deps in graph.items() if deps <= done and node not in done]:
        done.update(ready)
    if stuck := [str(node) for node in graph if node not in done]:
        errs.append(f"{path}: dependency cycle, these tasks can never run: {stuck}")


def _check_template(template: dict, path: str, templates: dict, errs: list[str]) -> None:
    declared = {_name(p) for p in _dicts(_dig(template, "inputs", "parameters"))}
    where = f"the inputs.parameters of template {template.get('name')!r}"
    _check_refs(template, path, "inputs", declared, where, errs, skip=frozenset({"inline"}))
    groups = enumerate(_list(template.get("steps")))
    calls = [call for g, group in groups for call in _indexed(group, f"{path}.steps[{g}]")]
    tasks = _indexed(_dig(template, "dag", "tasks"), f"{path}.dag.tasks")
    seen = set()
    for holder, at in calls + tasks:
        if _name(holder) in seen:
            errs.append(f"{at}.name: {_name(holder)!r} is not unique in this template")
        seen.add(_name(holder))
        _check_call(holder, at, templates, errs)
    if tasks:
        _check_dag(tasks, f"{path}.dag", errs)


def _check_semantics(doc: dict, errs: list[str]) -> None:
    """Templates named uniquely, one type each; entrypoint, onExit, step and task templates
    defined and their inputs supplied (templateRef targets and hooks are not followed);
    {{inputs.parameters.X}} declared by its template, {{workflow.parameters.X}} in spec.arguments
    (unless workflowTemplateRef; stricter than Argo for WorkflowTemplates); argument values set;
    one loop per step, withSequence count xor end; step/task names unique; dag dependencies and
    depends name tasks of the dag, with valid results and no cycle."""
    meta, spec, kind = doc.get("metadata"), doc.get("spec"), doc.get("kind")
    if isinstance(meta, dict) and not meta.get("name") and not meta.get("generateName"):
        errs.append("metadata: name or generateName is required")
    if len(str(_dig(doc, "metadata", "name") or "")) > 63:
        errs.append("metadata.name: Argo allows at most 63 characters")
    if not isinstance(spec, dict):
        return
    templates: dict[str, dict] = {}
    for template, at in _indexed(spec.get("templates"), "spec.templates"):
        if not (name := _name(template)) or name in templates:
            errs.append(f"{at}.name: {'missing' if not name else f'{name!r} is not unique'}")
        else:
            templates[name] = template
        types = [k for k in TEMPLATE_TYPES if template.get(k) is not None]
        if len(types) != 1:
            errs.append(f"{at}: needs exactly one template type of {TEMPLATE_TYPES} (has {types})")
    if kind != "Workflow" or spec.get("workflowTemplateRef") is None:
        entry, on_exit = _name(spec, "entrypoint"), _name(spec, "onExit")
        if entry and entry not in templates:
            errs.append(f"spec.entrypoint: template {entry!r} is not defined")
        elif entry and kind == "Workflow":
            _check_args(templates[entry], spec.get("arguments"), "spec.arguments", errs)
        elif not entry and kind == "Workflow":
            errs.append("spec.entrypoint: required (there is no spec.workflowTemplateRef)")
        if on_exit and on_exit not in templates:
            errs.append(f"spec.onExit: template {on_exit!r} is not defined")
        declared = {_name(p) for p in _dicts(_dig(spec, "arguments", "parameters"))}
        _check_refs(spec, "spec", "workflow", declared, "spec.arguments.parameters", errs)
    for template, at in _indexed(spec.get("templates"), "spec.templates"):
        _check_template(template, at, templates, errs)


def validate(doc: dict) -> list[str]:
    """All problems of one Workflow or WorkflowTemplate manifest; [] means valid."""
    if not isinstance(doc, dict):
        return [f"document: expected object, got {_kind(doc)}"]
    errs: list[str] = []
    if doc.get("apiVersion") != API_VERSION:
        errs.append(f"apiVersion: expected {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    if (kind := doc.get("kind")) not in CRD_FILES:
        return [*errs, f"kind: {kind!r} cannot be validated (known: {', '.join(CRD_FILES)})"]
    schema = schema_for(kind)
    if set(schema["properties"].get("metadata", {})) <= {"type", "description"}:
        schema = {**schema, "properties": {**schema["properties"], "metadata": OBJECT_META}}
    _check(doc, schema, "", errs)
    _check_semantics(doc, errs)
    return list(dict.fromkeys(errs))


def pod_security(doc: dict) -> list[str]:
    """How the pod of each container template, as Argo's controller would build it with its
    default config (argo/pod.py: Argo's init and wait containers included), breaks the Pod
    Security Standard "restricted" (argo/security.py)."""
    problems = []
    for template in _dicts(_dig(doc, "spec", "templates")):
        if not isinstance(template.get("container"), dict) or not (name := _name(template)):
            continue
        try:
            lines = restricted(pod_spec(doc, name))
        except ValueError as e:  # a podSpecPatch or volume Argo would refuse
            lines = [str(e)]
        problems += [f"template {name}: pod security 'restricted': {line}" for line in lines]
    return problems


def validate_file(path, *, restricted_pods: bool = False) -> list[str]:
    """Problems of every Argo document in a YAML file; other kinds (Secret, PV...) are skipped.
    With restricted_pods, a document that is otherwise valid is also checked by pod_security
    (off by default: it is a property of the namespace a manifest runs in, not of Argo's CRDs,
    and most manifests, Argo's examples among them, are not written for it)."""
    try:
        with open(path, encoding="utf-8") as f:
            docs = [doc for doc in yaml.load_all(f, Loader=_LOADER) if doc is not None]
    except yaml.YAMLError as e:
        return [f"invalid YAML: {' '.join(str(e).split())}"]
    problems = []
    for n, doc in enumerate(docs, 1):
        foreign = isinstance(doc, dict) and doc.get("kind") not in CRD_FILES
        if foreign and not str(doc.get("apiVersion", API_VERSION)).startswith("argoproj.io/"):
            continue
        found = validate(doc)
        if restricted_pods and not found and not foreign:
            found = pod_security(doc)
        problems += [f"doc {n}: {p}" if len(docs) > 1 else p for p in found]
    return problems


if __name__ == "__main__":
    found = [f"{path}: {problem}" for path in sys.argv[1:] for problem in validate_file(path)]
    sys.exit("\n".join(found) or None)  # problems go to stderr, exit status 1
