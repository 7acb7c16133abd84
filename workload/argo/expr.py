"""Argo's template language, for the subset the manifests use: `{{name}}` and `{{=expression}}`
substitution (`substitute`), and boolean expr-lang conditions such as a retryStrategy's
expression (`evaluate_condition`), on Argo's semantics. Anything outside the subset raises
Unsupported naming it."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from decimal import Decimal

from ..errors import ConfigError


class Unsupported(ConfigError, ValueError):
    """A manifest (or Batch file) uses what the local expansion does not model, or breaks a
    rule Argo enforces; the message names the field or value (exit 78)."""


# -- {{...}} and the expr subset ---------------------------------------------------------------
def substitute(text: str, scope: Mapping[str, str]) -> str:
    """Argo's `{{name}}` and `{{=expression}}` substitution in one string."""

    def one(m: re.Match) -> str:
        tag = m.group(1).strip()
        if tag.startswith("="):
            return render_value(_eval(_parse(tag[1:]), scope))
        if tag not in scope:
            raise Unsupported(f"unknown variable {{{{{tag}}}}}; known here: {sorted(scope)}")
        return scope[tag]

    return re.sub(r"\{\{(.*?)\}\}", one, text, flags=re.S)


def substitute_all(value, scope: Mapping[str, str]):
    """`substitute` in every string of a JSON-like value."""
    if isinstance(value, str):
        return substitute(value, scope)
    if isinstance(value, list):
        return [substitute_all(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, scope) for k, v in value.items()}
    return value


def _parse(source: str) -> ast.expr:
    try:
        return ast.parse(source.strip(), mode="eval").body
    except SyntaxError:
        raise Unsupported(f"unsupported expression {source!r}") from None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)):
        return f"{base}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else None


def _int64(v: int) -> int:
    if not -(2**63) <= v < 2**63:
        raise Unsupported(f"integer overflow in expression: {v}")
    return v


def _to_int(v):  # expr's int() and Argo's asInt(): strconv.Atoi for strings, truncation
    if isinstance(v, str) and not re.fullmatch(r"[+-]?[0-9]+", v):
        raise Unsupported(f"int({v!r}): not an integer")
    if isinstance(v, float) and not math.isfinite(v):
        raise Unsupported(f"int({v}): not finite")
    return _int64(int(v))


def _to_float(v):  # strconv.ParseFloat, without Go's inf, nan, hex and underscores
    if isinstance(v, str) and not re.fullmatch(
        r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?", v, re.IGNORECASE
    ):
        raise Unsupported(f"float({v!r}): not a number")
    return float(v)


_FUNCTIONS = {"asInt": _to_int, "int": _to_int, "asFloat": _to_float, "float": _to_float}
_OPERATORS = ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Mod | ast.Pow


def _eval(node: ast.expr, scope: Mapping[str, str]):
    text = ast.unparse(node)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return node.value
    if (name := _dotted(node)) is not None:
        if name not in scope:
            raise Unsupported(f"unknown variable {name!r} in expression; known: {sorted(scope)}")
        return scope[name]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and not node.keywords
        and node.func.id in _FUNCTIONS
        and len(node.args) == 1
    ):
        return _FUNCTIONS[node.func.id](_eval(node.args[0], scope))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _number(_eval(node.operand, scope), text)
        return -v if isinstance(node.op, ast.USub) else v
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS)):
        raise Unsupported(f"unsupported expression construct {text!r}")
    a, b = _number(_eval(node.left, scope), text), _number(_eval(node.right, scope), text)
    op = node.op
    ints = isinstance(a, int) and isinstance(b, int)
    if isinstance(op, ast.Div | ast.Mod) and b == 0:
        raise Unsupported(f"division by zero in {text!r}")
    if isinstance(op, ast.Div):  # expr: `/` is float division, even of two ints
        return float(a) / float(b)
    if isinstance(op, ast.Pow):  # expr: `**` is Go's math.Pow, a float
        try:
            return math.pow(a, b)
        except (OverflowError, ValueError):
            raise Unsupported(f"{text!r} is not finite") from None
    if isinstance(op, ast.Mod):  # integers only; Go's remainder has the dividend's sign
        if not ints:
            raise Unsupported(f"{text!r}: % needs integers")
        return abs(a) % abs(b) * (-1 if a < 0 else 1)
    v = a + b if isinstance(op, ast.Add) else a - b if isinstance(op, ast.Sub) else a * b
    return _int64(v) if ints else v


def _number(v, text: str):
    if type(v) not in (int, float):
        raise Unsupported(f"{text!r}: operand {v!r} is not a number (use asInt)")
    return v


def render_value(v) -> str:
    """As Argo writes json.Marshal(result): floats in Go's shortest form, 32.0 as "32"."""
    if isinstance(v, str) and not re.fullmatch(r"[\w./:@+,=-]*", v):
        raise Unsupported(f"expression result {v!r} would need JSON escaping")
    if isinstance(v, int | str):
        return str(v)
    if not math.isfinite(v):
        raise Unsupported(f"expression result {v} cannot be rendered")
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
    tokens: list[tuple[str, str]] = []
    pos = 0
    source = expression.strip()
    while pos < len(source):
        m = _CONDITION_TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise Unsupported(
                f"unsupported expression at {source[pos:].lstrip()!r} in {expression!r}"
            )
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    parser = _ConditionParser(tokens, expression)
    tree = parser.disjunction()
    if parser.i != len(tokens):
        raise Unsupported(f"unsupported expression at {tokens[parser.i][1]!r} in {expression!r}")
    result = _evaluate(tree, scope)
    if not isinstance(result, bool):
        raise Unsupported(f"expression {expression!r} gives {result!r}, not a bool")
    return result


class _ConditionParser:
    def __init__(self, tokens: list[tuple[str, str]], source: str):
        self.tokens, self.i, self.source = tokens, 0, source

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens) or (expected and self.tokens[self.i][1] != expected):
            raise Unsupported(f"expected {expected or 'more'} in {self.source!r}")
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
                raise Unsupported(f"chained comparison in {self.source!r}")
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
                    raise Unsupported(f"unsupported function {text!r} in {self.source!r}")
                self.take("(")
                arg = self.disjunction()
                self.take(")")
                return ("int", arg)
            return ("var", text)
        raise Unsupported(f"unsupported token {text!r} in {self.source!r}")


def _evaluate(node, scope: Mapping[str, str]):
    op = node[0]
    if op == "const":
        return node[1]
    if op == "var":
        if node[1] not in scope:
            raise Unsupported(f"unknown variable {node[1]!r} in expression; known: {sorted(scope)}")
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
            raise Unsupported(f"`in` needs a list on its right, got {b!r}")
        return any(_equal(a, item) for item in b)
    if not (isinstance(a, str) and isinstance(b, str)):  # matches
        raise Unsupported(f"`matches` needs strings, got {a!r} matches {b!r}")
    if not _RE2_SUBSET.fullmatch(b) or "(?" in b:
        raise Unsupported(f"pattern {b!r} is outside the subset RE2 and Python agree on")
    return re.search(b, a) is not None


def _boolean(v, op: str) -> bool:
    if not isinstance(v, bool):
        raise Unsupported(f"{op} needs bools, got {v!r}")
    return v


def _equal(a, b) -> bool:  # expr's runtime.Equal: numbers by value, else same type and value
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
