"""Expand a rendered Argo manifest into the pods Argo would create, then run them here.

No Kubernetes in the tests: `expand` reads a Workflow or WorkflowTemplate the way Argo's
controller does, for the subset our manifests use (steps, dag and container templates,
withSequence, withItems, `{{...}}` and `{{=expr}}`), and raises ValueError naming anything else.
`run` starts each pod's exact argv, with the image's WORKDIR, the PVC at /mnt/vol and the output
parameter files in the pod's private /tmp mapped onto local directories. `evaluate_condition`
evaluates a boolean expr-lang expression, such as a retryStrategy.expression, on Argo's semantics
for the subset the manifests use.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

MOUNT = "/mnt/vol"  # the PVC in the manifests, and the package's default root
IMAGE_WORKDIR = "/app"  # the image's WORKDIR, holding process.py and merge.py
TMP = "/tmp/"  # private to each container; output parameter files there get a local directory

# Fields understood; any other is refused. Retries, failFast, deadlines, GC, resources and
# security settings do not change what a pod runs.
_SPEC = {"entrypoint", "templates", "arguments", "volumes", "parallelism", "priority"}
_SPEC |= {"activeDeadlineSeconds", "podGC", "ttlStrategy", "serviceAccountName"}
_TEMPLATE = {"name", "inputs", "outputs", "container", "steps", "dag", "parallelism"}
_TEMPLATE |= {"retryStrategy", "activeDeadlineSeconds", "podSpecPatch", "metadata", "failFast"}
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


class PodFailed(RuntimeError):
    def __init__(self, pod: Pod, returncode: int, stderr: str):
        super().__init__(f"pod {pod.name} {pod.argv} exited {returncode}: {stderr.strip()}")
        self.pod, self.returncode, self.stderr = pod, returncode, stderr


def _check(obj: Mapping, allowed: set[str], what: str) -> None:
    if unknown := sorted(set(obj) - allowed):
        raise ValueError(f"{what}: unsupported field(s) {', '.join(unknown)}")


# -- {{...}} and the expr subset ---------------------------------------------------------------
def substitute(text: str, scope: Mapping[str, str]) -> str:
    """Argo's `{{name}}` and `{{=expression}}` substitution in one string."""

    def one(m: re.Match) -> str:
        tag = m.group(1).strip()
        if tag.startswith("="):
            return _render(_eval(_parse(tag[1:]), scope))
        if tag not in scope:
            raise ValueError(f"unknown variable {{{{{tag}}}}}; known here: {sorted(scope)}")
        return scope[tag]

    return re.sub(r"\{\{(.*?)\}\}", one, text, flags=re.S)


def _deep(value, scope: Mapping[str, str]):
    if isinstance(value, str):
        return substitute(value, scope)
    if isinstance(value, list):
        return [_deep(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v, scope) for k, v in value.items()}
    return value


def _parse(source: str) -> ast.expr:
    try:
        return ast.parse(source.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"unsupported expression {source!r}") from None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)):
        return f"{base}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else None


def _int64(v: int) -> int:
    if not -(2**63) <= v < 2**63:
        raise ValueError(f"integer overflow in expression: {v}")
    return v


def _to_int(v):  # expr's int() and Argo's asInt(): strconv.Atoi for strings, truncation
    if isinstance(v, str) and not re.fullmatch(r"[+-]?[0-9]+", v):
        raise ValueError(f"int({v!r}): not an integer")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"int({v}): not finite")
    return _int64(int(v))


def _to_float(v):  # strconv.ParseFloat, without Go's inf, nan, hex and underscores
    if isinstance(v, str) and not re.fullmatch(
        r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?", v, re.IGNORECASE
    ):
        raise ValueError(f"float({v!r}): not a number")
    return float(v)


_FUNCTIONS = {"asInt": _to_int, "int": _to_int, "asFloat": _to_float, "float": _to_float}
_OPERATORS = ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Mod | ast.Pow


def _eval(node: ast.expr, scope: Mapping[str, str]):
    text = ast.unparse(node)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return node.value
    if (name := _dotted(node)) is not None:
        if name not in scope:
            raise ValueError(f"unknown variable {name!r} in expression; known: {sorted(scope)}")
        return scope[name]
    call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
    if call and node.func.id in _FUNCTIONS and len(node.args) == 1:
        return _FUNCTIONS[node.func.id](_eval(node.args[0], scope))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _number(_eval(node.operand, scope), text)
        return -v if isinstance(node.op, ast.USub) else v
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS)):
        raise ValueError(f"unsupported expression construct {text!r}")
    a, b = _number(_eval(node.left, scope), text), _number(_eval(node.right, scope), text)
    op = node.op
    ints = isinstance(a, int) and isinstance(b, int)
    if isinstance(op, ast.Div | ast.Mod) and b == 0:
        raise ValueError(f"division by zero in {text!r}")
    if isinstance(op, ast.Div):  # expr: `/` is float division, even of two ints
        return float(a) / float(b)
    if isinstance(op, ast.Pow):  # expr: `**` is Go's math.Pow, a float
        try:
            return math.pow(a, b)
        except (OverflowError, ValueError):
            raise ValueError(f"{text!r} is not finite") from None
    if isinstance(op, ast.Mod):  # integers only; Go's remainder has the dividend's sign
        if not ints:
            raise ValueError(f"{text!r}: % needs integers")
        return abs(a) % abs(b) * (-1 if a < 0 else 1)
    v = a + b if isinstance(op, ast.Add) else a - b if isinstance(op, ast.Sub) else a * b
    return _int64(v) if ints else v


def _number(v, text: str):
    if type(v) not in (int, float):
        raise ValueError(f"{text!r}: operand {v!r} is not a number (use asInt)")
    return v


def _render(v) -> str:
    """As Argo writes json.Marshal(result): floats in Go's shortest form, 32.0 as "32"."""
    if isinstance(v, str) and not re.fullmatch(r"[\w./:@+,=-]*", v):
        raise ValueError(f"expression result {v!r} would need JSON escaping")
    if isinstance(v, int | str):
        return str(v)
    if not math.isfinite(v):
        raise ValueError(f"expression result {v} cannot be rendered")
    if v and (abs(v) < 1e-6 or abs(v) >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(v))
    text = format(Decimal(repr(v)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- boolean conditions (expr-lang) ----------------------------------------------------------------
# Argo evaluates retryStrategy.expression with expr-lang (util/expr/argoexpr/eval.go: EvalBool,
# the result must be a bool) over its variables and functions (util/expr/env/env.go: asInt is
# expr's int()). The subset here: string literals in single or double quotes without escapes,
# integer literals, [lists], dotted variables, asInt()/int(), parentheses, unary !, the binary
# ==, !=, in, matches (one per operand pair, not chained), then && over ||. Anything else is
# refused. Precedence as expr's: ! binds tightest, then the comparisons, then &&, then ||.
_CONDITION_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'[^'\\]*'|"[^"\\]*")|(?P<int>[0-9]+)"""
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>\|\||&&|==|!=|[!()\[\],]))"
)
_COMPARISONS = ("==", "!=", "in", "matches")
# Patterns that mean the same to Go's RE2 (regexp.MatchString: a match anywhere) and to Python's
# re.search: no escapes, no flags or group extensions, no counted repetition.
_RE2_SUBSET = re.compile(r"[^\\{}]*")


def evaluate_condition(expression: str, scope: Mapping[str, str]) -> bool:
    """A boolean expr-lang expression, as Argo evaluates it; raises ValueError on anything
    outside the subset, a type Argo would reject at run time, or a non-bool result."""
    tokens, pos = [], 0
    source = expression.strip()
    while pos < len(source):
        m = _CONDITION_TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise ValueError(
                f"unsupported expression at {source[pos:].lstrip()!r} in {expression!r}"
            )
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    parser = _ConditionParser(tokens, expression)
    tree = parser.disjunction()
    if parser.i != len(tokens):
        raise ValueError(f"unsupported expression at {tokens[parser.i][1]!r} in {expression!r}")
    result = _evaluate(tree, scope)
    if not isinstance(result, bool):
        raise ValueError(f"expression {expression!r} gives {result!r}, not a bool")
    return result


class _ConditionParser:
    def __init__(self, tokens: list[tuple[str, str]], source: str):
        self.tokens, self.i, self.source = tokens, 0, source

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens) or (expected and self.tokens[self.i][1] != expected):
            raise ValueError(f"expected {expected or 'more'} in {self.source!r}")
        self.i += 1
        return self.tokens[self.i - 1]

    def disjunction(self):
        node = self.conjunction()
        while self.peek() == "||":
            self.take()
            node = ("||", node, self.conjunction())
        return node

    def conjunction(self):
        node = self.comparison()
        while self.peek() == "&&":
            self.take()
            node = ("&&", node, self.comparison())
        return node

    def comparison(self):
        node = self.unary()
        if self.peek() in _COMPARISONS and self.tokens[self.i][0] in ("op", "name"):
            op = self.take()[1]
            node = (op, node, self.unary())
            if self.peek() in _COMPARISONS:
                raise ValueError(f"chained comparison in {self.source!r}")
        return node

    def unary(self):
        if self.peek() == "!":
            self.take()
            return ("!", self.unary())
        return self.primary()

    def primary(self):
        kind, text = self.take()
        if kind == "str":
            return ("const", text[1:-1])
        if kind == "int":
            return ("const", _int64(int(text)))
        if text == "(":
            node = self.disjunction()
            self.take(")")
            return node
        if text == "[":
            items = []
            while self.peek() != "]":
                items.append(self.disjunction())
                if self.peek() != "]":
                    self.take(",")
            self.take("]")
            return ("list", items)
        if kind == "name" and text not in _COMPARISONS:
            if self.peek() == "(":
                if text not in ("asInt", "int"):
                    raise ValueError(f"unsupported function {text!r} in {self.source!r}")
                self.take("(")
                arg = self.disjunction()
                self.take(")")
                return ("int", arg)
            return ("var", text)
        raise ValueError(f"unsupported token {text!r} in {self.source!r}")


def _evaluate(node, scope: Mapping[str, str]):
    op = node[0]
    if op == "const":
        return node[1]
    if op == "var":
        if node[1] not in scope:
            raise ValueError(f"unknown variable {node[1]!r} in expression; known: {sorted(scope)}")
        return scope[node[1]]
    if op == "list":
        return [_evaluate(item, scope) for item in node[1]]
    if op == "int":
        return _to_int(_evaluate(node[1], scope))
    if op == "!":
        return not _boolean(_evaluate(node[1], scope), "!")
    if op in ("||", "&&"):  # short-circuit, both sides bool
        left = _boolean(_evaluate(node[1], scope), op)
        if left == (op == "||"):
            return left
        return _boolean(_evaluate(node[2], scope), op)
    a, b = _evaluate(node[1], scope), _evaluate(node[2], scope)
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op == "in":
        if not isinstance(b, list):
            raise ValueError(f"`in` needs a list on its right, got {b!r}")
        return any(_equal(a, item) for item in b)
    if not (isinstance(a, str) and isinstance(b, str)):  # matches
        raise ValueError(f"`matches` needs strings, got {a!r} matches {b!r}")
    if not _RE2_SUBSET.fullmatch(b) or "(?" in b:
        raise ValueError(f"pattern {b!r} is outside the subset RE2 and Python agree on")
    return re.search(b, a) is not None


def _boolean(v, op: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{op} needs bools, got {v!r}")
    return v


def _equal(a, b) -> bool:  # expr's runtime.Equal: numbers by value, else same type and value
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


# -- expansion ---------------------------------------------------------------------------------
def _scalar(v, what: str) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str | int | float):
        return _render(v) if isinstance(v, float) else str(v)
    raise ValueError(f"{what}: expected a string or number, got {v!r}")


def _parameters(args: Mapping | None, what: str) -> dict[str, str]:
    """Name -> value (or default) of `arguments` or `inputs` parameters that have one."""
    _check(args or {}, {"parameters"}, what)
    out = {}
    for p in (args or {}).get("parameters") or []:
        _check(p, _PARAMETER, f"{what} parameter {p.get('name')!r}")
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
        raise ValueError(f"unsupported kind {manifest.get('kind')!r}")
    spec = manifest["spec"]
    if "workflowTemplateRef" in spec:
        _check(spec, {"workflowTemplateRef", "arguments", "entrypoint"}, "Workflow with a ref")
        _check(spec["workflowTemplateRef"], {"name"}, "workflowTemplateRef")
        ref = spec["workflowTemplateRef"]["name"]
        if (templates or {}).get(ref, {}).get("kind") != "WorkflowTemplate":
            raise ValueError(f"workflowTemplateRef {ref!r}: no such WorkflowTemplate given")
        base = templates[ref]["spec"]
        given = {**_parameters(spec.get("arguments"), "arguments"), **(parameters or {})}
        spec = {**base, "entrypoint": spec.get("entrypoint", base["entrypoint"])}
        return expand({"kind": "WorkflowTemplate", "spec": spec}, given)
    _check(spec, _SPEC, "spec")
    declared = {p["name"]: p for p in (spec.get("arguments") or {}).get("parameters") or []}
    if unknown := sorted(set(parameters or {}) - set(declared)):
        raise ValueError(f"parameters {unknown} are not declared; declared: {sorted(declared)}")
    values = {**_parameters(spec.get("arguments"), "arguments"), **(parameters or {})}
    for name, p in declared.items():
        if name not in values:
            raise ValueError(f"workflow parameter {name!r} has no value")
        if "enum" in p and values[name] not in [_scalar(e, name) for e in p["enum"]]:
            raise ValueError(f"parameter {name}={values[name]!r} is not one of {p['enum']}")
    scope = {f"workflow.parameters.{k}": v for k, v in values.items()}
    expansion = _Expansion({t["name"]: t for t in spec["templates"]}, spec.get("volumes") or [])
    return expansion.waves(spec["entrypoint"], {}, scope, [], "")


class _Expansion:
    def __init__(self, templates: dict[str, dict], volumes: list[dict]):
        self.templates, self.volumes = templates, {v["name"] for v in volumes}

    def waves(self, name: str, args: dict, scope: dict, stack: list, node: str):
        """Template `name` called with `args`; `scope` holds the workflow's variables."""
        if name not in self.templates or name in stack:
            raise ValueError(f"template {name!r} is unknown or recursive (via {stack})")
        t = self.templates[name]
        _check(t, _TEMPLATE, f"template {name!r}")
        declared = {p["name"] for p in (t.get("inputs") or {}).get("parameters") or []}
        if unknown := sorted(set(args) - declared):
            raise ValueError(f"template {name!r} has no inputs named {unknown}")
        defaults = _parameters(t.get("inputs"), f"template {name!r} inputs")
        values = {k: substitute(v, scope) for k, v in defaults.items()} | args
        if missing := sorted(declared - set(values)):
            raise ValueError(f"template {name!r}: inputs.parameters {missing} not supplied")
        scope = {**scope, **{f"inputs.parameters.{k}": v for k, v in values.items()}}
        kind = [k for k in ("container", "steps", "dag") if k in t]
        if kind == ["container"]:
            return [[self.pod(_deep(t, scope), node or name)]]
        stack = [*stack, name]
        if kind == ["steps"]:  # a group's steps and their items run side by side
            groups = [[b for s in g for b in self.step(s, scope, stack, _STEP)] for g in t["steps"]]
            return [wave for group in groups for wave in _side_by_side([(0, b) for b in group])]
        if kind != ["dag"]:
            raise ValueError(f"template {name!r}: expected exactly one of container, steps, dag")
        _check(t["dag"], {"tasks"}, f"dag {name!r}")
        tasks = {task["name"]: task for task in t["dag"]["tasks"]}
        start: dict[str, int] = {}
        end: dict[str, int] = {}
        branches: dict[str, list] = {}

        def place(task: str, path: tuple = ()) -> int:  # right after its last dependency
            if task in path:
                raise ValueError(f"dependency cycle through task {task!r}")
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
        _check(step, allowed, f"step {step.get('name')!r}")
        items: list[str | None] = [None]
        if "withSequence" in step:
            items = _sequence(_deep(step["withSequence"], scope), step["name"])
        elif "withItems" in step:
            items = [_scalar(i, f"withItems of {step['name']!r}") for i in step["withItems"]]
        workflow = {k: v for k, v in scope.items() if k.startswith("workflow.")}
        branches = []
        for i, item in enumerate(items):
            here = scope if item is None else {**scope, "item": item}
            args = _parameters(_deep(step.get("arguments"), here), f"step {step['name']!r}")
            node = step["name"] if item is None else f"{step['name']}({i}:{item})"
            branches.append(self.waves(step["template"], args, workflow, stack, node))
        return branches

    def pod(self, t: dict, node: str) -> Pod:
        c = t["container"]
        _check(c, _CONTAINER, f"container of {t['name']!r}")
        env: dict[str, str | SecretRef] = {}
        for e in c.get("env") or []:
            _check(e, {"name", "value", "valueFrom"}, f"env {e['name']}")
            _check(e.get("valueFrom") or {}, {"secretKeyRef"}, f"env {e['name']} valueFrom")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            value = _scalar(e.get("value", ""), e["name"])
            env[e["name"]] = (
                SecretRef(ref["name"], ref["key"], ref.get("optional", False)) if ref else value
            )
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
        if undeclared := sorted(set(mounts.values()) - self.volumes):
            raise ValueError(f"template {t['name']!r} mounts undeclared volumes {undeclared}")
        _check(t.get("outputs") or {}, {"parameters"}, f"outputs of {t['name']!r}")
        outputs, defaults = {}, {}
        for p in (t.get("outputs") or {}).get("parameters") or []:
            _check(p.get("valueFrom") or {}, {"path", "default"}, f"output {p['name']!r} valueFrom")
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
            raise ValueError(f"task {task['name']!r}: unsupported depends {task['depends']!r}")
        deps.append(term)
    if unknown := sorted(set(deps) - set(tasks)):
        raise ValueError(f"task {task['name']!r} depends on unknown tasks {unknown}")
    return deps


def _sequence(seq: dict, step: str) -> list[str]:
    _check(seq, {"count", "start", "end"}, f"withSequence of {step!r}")
    if ("count" in seq) == ("end" in seq):
        raise ValueError(f"withSequence of {step!r}: give exactly one of count and end")
    n = {}
    for key in seq:  # Argo: strconv.ParseInt(..., 10, 64); "32.5" fails the step
        n[key] = _scalar(seq[key], key)
        if not re.fullmatch(r"[+-]?[0-9]+", n[key]) or (key == "count" and int(n[key]) < 0):
            raise ValueError(f"withSequence {key} {n[key]!r} of {step!r} is not an integer >= 0")
    start = int(n.get("start", 0))
    end = start + int(n["count"]) - 1 if "count" in n else int(n["end"])
    step = 1 if start <= end or "count" in n else -1  # Argo counts down from start to end
    return [str(i) for i in range(start, end + step, step)]


# -- running -----------------------------------------------------------------------------------
def resolve_env(pod: Pod, secrets: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """The pod's env with Secret references resolved, as the kubelet does."""
    out = {}
    for name, value in pod.env.items():
        if not isinstance(value, SecretRef):
            out[name] = value
        elif (value.name, value.key) in secrets:
            out[name] = secrets[value.name, value.key]
        elif not value.optional:
            raise ValueError(f"pod {pod.name}: secret {value.name}/{value.key} is missing")
    return out


@dataclass
class Result:
    pod: Pod
    stdout: str
    stderr: str
    outputs: dict[str, str]  # output parameter -> the file's content, as Argo collects it


def run(
    waves: list[list[Pod]],
    image_root: Path,
    *,
    volume: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[tuple[str, str], str] | None = None,
    workers: int = 2,
    in_process: bool = False,
) -> list[list[Result]]:
    """Run wave after wave. `image_root` stands for the image's WORKDIR, `volume` for the PVC at
    /mnt/vol (as WORKLOAD_ROOT, for pods without --root); `env` goes under each pod's own env.
    In-process runs call the image scripts' functions with the same argv, one pod at a time.
    A pod that exits non-zero, or leaves an output parameter's file missing, raises PodFailed."""
    results = []
    with tempfile.TemporaryDirectory(prefix="pods-") as scratch:
        for n, wave in enumerate(waves):

            def go(i: int, pod: Pod, n: int = n) -> Result:
                job = _prepare(pod, Path(scratch, f"{n}-{i}"), volume, env or {}, secrets or {})
                return (_in_process if in_process else _subprocess)(pod, Path(image_root), *job)

            with ThreadPoolExecutor(1 if in_process else workers) as pool:
                results.append(list(pool.map(go, range(len(wave)), wave)))
    return results


def _prepare(pod: Pod, tmp: Path, volume, env, secrets) -> tuple[list[str], dict, dict]:
    if (pod.working_dir or IMAGE_WORKDIR) != IMAGE_WORKDIR or pod.argv[:1] != ["python3"]:
        raise ValueError(f"pod {pod.name}: not python3 in {IMAGE_WORKDIR}: {pod.argv}")
    if any(MOUNT in a for a in pod.argv):
        raise ValueError(f"pod {pod.name}: {MOUNT} in its argv cannot be mapped; use -p root=")
    full = {k: v for k, v in os.environ.items() if not k.startswith(("WORKLOAD_", "AWS_", "OSS_"))}
    full |= {**env, **resolve_env(pod, secrets)}
    if not any(a == "--root" or a.startswith("--root=") for a in pod.argv):
        if volume is None or MOUNT not in pod.mounts:
            raise ValueError(f"pod {pod.name} reads the PVC at {MOUNT}: pass volume=")
        full["WORKLOAD_ROOT"] = volume
    if outside := sorted(p for p in pod.outputs.values() if not p.startswith(TMP)):
        raise ValueError(f"pod {pod.name}: outputs {outside} outside {TMP}")
    tmp.mkdir()  # the pod's own /tmp, for the files Argo collects as output parameters
    private = {p: str(tmp / p.removeprefix(TMP)) for p in pod.outputs.values()}
    outputs = {k: private[p] for k, p in pod.outputs.items()}
    return [sys.executable, *(private.get(a, a) for a in pod.argv[1:])], full, outputs


def _finish(pod: Pod, code: int, stdout: str, stderr: str, outputs: dict) -> Result:
    """Argo's output parameters: the file's content without one trailing newline, or the
    parameter's valueFrom.default when the file is missing (else an executor error)."""
    if code != 0:
        raise PodFailed(pod, code, stderr)
    missing = [k for k, p in outputs.items() if not Path(p).exists()]
    if undefaulted := [outputs[k] for k in missing if k not in pod.output_defaults]:
        raise PodFailed(pod, 0, f"output parameter files missing: {undefaulted}")
    values = {k: pod.output_defaults[k] for k in missing}
    values |= {k: Path(p).read_text() for k, p in outputs.items() if k not in values}
    return Result(pod, stdout, stderr, {k: v.removesuffix("\n") for k, v in values.items()})


def _subprocess(pod: Pod, cwd: Path, argv: list[str], env: dict, outputs: dict) -> Result:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return _finish(pod, done.returncode, done.stdout, done.stderr, outputs)


def _in_process(pod: Pod, cwd: Path, argv: list[str], env: dict, outputs: dict) -> Result:
    from workload import final, process

    main = {"process.py": process.main, "merge.py": final.main}.get(argv[1])
    if main is None or not (cwd / argv[1]).is_file():
        raise ValueError(f"pod {pod.name}: no image script {argv[1]!r} to run in-process")
    saved, out, err = dict(os.environ), io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv[2:], prog=argv[1])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return _finish(pod, code, out.getvalue(), err.getvalue(), outputs)
