"""Argo retries exactly what a retry fixes: the rendered retryStrategy.expression, evaluated with
expr-lang's semantics (workload/argo/expr.py: evaluate_condition) on the lastRetry.* variables
Argo builds for each way a pod can end; and the rest of the retry set-up (backoff, failFast,
output parameter defaults)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from workload import errors
from workload.argo import __main__ as cli
from workload.argo.build import (
    FINAL_EXIT_CODES,
    FORMS,
    INFRASTRUCTURE_MESSAGES,
    Options,
)
from workload.argo.expand import expand
from workload.argo.expr import evaluate_condition
from workload.argo.validate import validate
from workload.testing.pods import REPO

SHAPES = [
    Options(),
    Options(files=9, fan_in=2, final_fan_in=2),
    Options(files=23, fan_in=3, final_fan_in=1, op="aggregate", eci=True, spot=True),
    Options(files=5, claim=None, root="oss://bucket/run"),
]

GOLDEN = cli.golden(REPO / "manifests")


def _documents() -> list[dict]:
    """Every rendered manifest: the golden files and each form of each shape."""
    docs = [yaml.safe_load(path.read_text()) for path in GOLDEN.values()]
    return docs + [FORMS[form](o).to_dict() for o in SHAPES for form in FORMS]


def _pod_templates(doc: dict) -> list[dict]:
    return [t for t in doc["spec"].get("templates", []) if "container" in t]


def _rendered_expression() -> str:
    expressions = {
        t["retryStrategy"]["expression"] for d in _documents() for t in _pod_templates(d)
    }
    assert len(expressions) == 1, expressions
    return expressions.pop()


EXPRESSION = _rendered_expression()


# -- the variables, as Argo builds them --------------------------------------------------------
def last_retry(status: str, exit_code: int | str, message: str) -> dict[str, str]:
    """buildRetryStrategyLocalScope (workflow/controller/operator.go): exitCode is the main
    container's terminated exit code as a string, "-1" when it has none; status the node phase;
    message the node message."""
    return {
        "lastRetry.exitCode": str(exit_code),
        "lastRetry.status": status,
        "lastRetry.message": message,
        "lastRetry.duration": "42.5",
        "retries": "0",
    }


def terminated(code: int, reason: str = "Error", message: str = "", container: str = "main"):
    """The node message inferFailedReason builds for a pod without status.message: container,
    reason, "(exit code N)", then the container's termination message, if any."""
    text = f"{container}: {reason} (exit code {code})"
    return f"{text}: {message}" if message else text


def failed(code: int, message: str = "", reason: str = "Error") -> dict[str, str]:
    """A pod whose main container exited `code`: phase Failed."""
    return last_retry("Failed", code, terminated(code, reason, message))


def taken_away(pod_message: str, exit_code: int | str = -1) -> dict[str, str]:
    """A Failed pod with status.message: the node message is that message, verbatim."""
    return last_retry("Failed", exit_code, pod_message)


# Pod status messages, as Kubernetes and Alibaba ECI write them.
# kubernetes pkg/kubelet/eviction/helpers.go: nodeLowMessageFmt, then containerMessageFmt
EVICTED_MEMORY = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
    "Container main was using 812Mi, request is 1Gi, has larger consumption of memory. "
)
EVICTED_DISK = (
    "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 9Gi. "
)
REFUSED_PRESSURE = "The node had condition: [DiskPressure]. "  # nodeConditionMessageFmt
SHUTDOWN = "Pod was terminated in response to imminent node shutdown."  # nodeshutdown_manager.go
REFUSED_SHUTDOWN = "Pod was rejected as the node is shutting down."  # nodeshutdown_manager.go
PREEMPTED = "Preempted in order to admit critical pod"  # pkg/kubelet/preemption/preemption.go
ECI_SPOT = "The pod is spot instance, and have been released at 2020-04-08T12:36Z"  # ECI docs
INFRASTRUCTURE = [
    EVICTED_MEMORY,
    EVICTED_DISK,
    REFUSED_PRESSURE,
    SHUTDOWN,
    REFUSED_SHUTDOWN,
    PREEMPTED,
    ECI_SPOT,
]

RETRIED = {
    "transient 75": failed(errors.EXIT_TRANSIENT),
    "transient 75, with a termination message": failed(75, "storage unavailable for oss://b/l1/3"),
    "emissary 64 (plain container: Failed)": failed(
        64, 'failed to find name in PATH: exec: "python3": executable file not found in $PATH'
    ),
    "emissary 64 (containerSet child: Error)": last_retry("Error", 64, terminated(64)),
    "pod deleted (Error)": last_retry("Error", -1, "pod deleted"),
    "pod deleted after main was killed (Error)": last_retry("Error", 143, "pod deleted"),
    "init-less supervisor failed before main (Error)": last_retry(
        "Error", 65, terminated(64, message="failed to read template", container="supervisor")
    ),
    "wait container failed after main succeeded (Error)": last_retry(
        "Error", 0, terminated(1, container="wait")
    ),
    "evicted, memory pressure, main killed": taken_away(EVICTED_MEMORY, 137),
    "evicted, disk pressure, no exit code": taken_away(EVICTED_DISK),
    "refused by a node under pressure": taken_away(REFUSED_PRESSURE),
    "graceful node shutdown, main terminated": taken_away(SHUTDOWN, 143),
    "graceful node shutdown, no exit code": taken_away(SHUTDOWN),
    "refused by a node shutting down": taken_away(REFUSED_SHUTDOWN),
    "kubelet preemption": taken_away(PREEMPTED, 137),
    "ECI spot instance reclaimed": taken_away(ECI_SPOT),
    "ECI spot instance reclaimed, main killed": taken_away(ECI_SPOT, 137),
}

NOT_RETRIED = {
    **{f"exit {code}": failed(code) for code in FINAL_EXIT_CODES},
    "usage 2, with its message": failed(errors.EXIT_USAGE, "count must be an integer, got '32.5'"),
    "plain non-zero exit (a Python traceback)": failed(1),
    "OOM kill": failed(137, reason="OOMKilled"),
    "SIGTERM without a pod message": failed(143),
    "pod deadline": taken_away(
        "Pod was active on the node longer than the specified deadline", 143
    ),
    "evicted for its own ephemeral storage limit": taken_away(
        'Container main exceeded its local ephemeral storage limit "1Gi". ', 137
    ),
    "evicted for the pod's ephemeral storage": taken_away(
        "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. "
    ),
    # Digits and words in a message decide nothing: object names reach termination messages.
    "66 naming an object evicted-75": failed(66, "missing input s3://b/evicted-75/l1/3.parquet"),
    "66 naming every phrase": failed(
        66, "cannot read oss://b/" + "/".join(INFRASTRUCTURE_MESSAGES.values()) + ".parquet"
    ),
    "70 quoting (exit code 75)": failed(70, "bug: expected (exit code 75) from the store"),
    "77 quoting exit code 64": failed(77, "access denied: main: Error (exit code 64)"),
    "1 with pod deleted in its message": failed(1, "pod deleted"),
    # The pod's own final verdict wins over what happened to the pod afterwards.
    "66 then pod deleted (Error)": last_retry("Error", 66, "pod deleted"),
    "78 then an Error": last_retry("Error", 78, terminated(1, container="wait")),
    "66 then evicted": taken_away(EVICTED_MEMORY, 66),
    "73 then node shutdown": taken_away(SHUTDOWN, 73),
}


@pytest.mark.parametrize("scope", RETRIED.values(), ids=RETRIED.keys())
def test_retried(scope):
    assert evaluate_condition(EXPRESSION, scope) is True


@pytest.mark.parametrize("scope", NOT_RETRIED.values(), ids=NOT_RETRIED.keys())
def test_not_retried(scope):
    assert evaluate_condition(EXPRESSION, scope) is False


def test_exit_codes_come_from_the_shared_table():
    assert errors.EXIT_TRANSIENT == 75
    retried = [code for code in range(256) if evaluate_condition(EXPRESSION, failed(code))]
    assert retried == [64, errors.EXIT_TRANSIENT]  # the emissary's own failure, and ours
    assert set(FINAL_EXIT_CODES) == {2, 66, 70, 73, 77, 78}


@pytest.mark.parametrize("message", INFRASTRUCTURE)
@pytest.mark.parametrize("code", [-1, 0, 1, 137, 143, *FINAL_EXIT_CODES])
def test_infrastructure_messages_count_only_as_the_whole_node_message(message, code):
    """A pod status message is the node message itself; anything Argo builds from a terminated
    container starts "<container>: ", and no anchored pattern matches it there."""
    assert evaluate_condition(EXPRESSION, taken_away(message, code)) is (
        code not in FINAL_EXIT_CODES
    )
    for status in ("Failed", "Error"):
        inside = last_retry(status, code, terminated(code, message=message))
        assert evaluate_condition(EXPRESSION, inside) is (
            status == "Error" and code not in FINAL_EXIT_CODES
        )


def test_every_phrase_is_anchored_and_plain():
    assert re.fullmatch(r"\^\(.*\)", EXPRESSION.split("matches '")[1].split("'")[0])
    for phrase in INFRASTRUCTURE_MESSAGES.values():
        assert not re.search(r"\d|\\|[.*+?{}\[\]$]", phrase), phrase  # no digits, no wildcards


# -- the evaluator refuses what it does not model ---------------------------------------------
@pytest.mark.parametrize(
    "expression,message",
    [
        ("lastRetry.message contains 'x'", "unsupported expression at 'contains'"),
        ("asInt(lastRetry.exitCode) > 1", r"unsupported expression at '> 1'"),
        ("lastRetry.status == 'Error' or true", "unsupported"),
        ("lastRetry.message matches '\\d+'", "unsupported expression"),
        ("lastRetry.message matches 'a{2}'", "outside the subset"),
        ("lastRetry.message matches '(?i)evicted'", "outside the subset"),
        ("sprig.trim(lastRetry.message) == ''", "unsupported function 'sprig.trim'"),
        ("lastRetry.exitCode == 1 == 1", "chained comparison"),
        ("lastRetry.nope == '1'", "unknown variable 'lastRetry.nope'"),
        ("asInt(lastRetry.status) == 1", "not an integer"),
        ("lastRetry.exitCode matches 75", "needs strings"),
        ("lastRetry.exitCode || true", r"\|\| needs bools"),
        ("asInt(lastRetry.exitCode)", "not a bool"),
    ],
)
def test_evaluator_refuses(expression, message):
    with pytest.raises(ValueError, match=message):
        evaluate_condition(expression, failed(66))


def test_evaluator_follows_expr():
    scope = failed(75)
    assert evaluate_condition("lastRetry.exitCode == '75'", scope)
    assert not evaluate_condition("lastRetry.exitCode == 75", scope)  # a string is not an int
    assert evaluate_condition("asInt(lastRetry.exitCode) in [1, 75] && !(1 in [2])", scope)
    with pytest.raises(ValueError, match="! needs bools"):  # ! binds tighter than ==
        evaluate_condition("!'a' == 'b'", scope)
    # && binds tighter than ||
    assert evaluate_condition("'a' == 'b' && 'a' == 'c' || 'a' == 'a'", scope)
    assert not evaluate_condition("'a' == 'b' && ('a' == 'c' || 'a' == 'a')", scope)
    assert evaluate_condition("lastRetry.message matches 'exit code 7'", scope)  # unanchored


# -- backoff, failFast, outputs ---------------------------------------------------------------
def _seconds(duration: str) -> int:
    """Argo's ParseStringToDuration: a bare number is seconds, else a Go duration."""
    if duration.isdigit():
        return int(duration)
    units = {"s": 1, "m": 60, "h": 3600}
    parts = re.fullmatch(r"((\d+)h)?((\d+)m)?((\d+)s)?", duration)
    assert parts and duration, duration
    return sum(int(parts[g] or 0) * units[u] for g, u in ((2, "h"), (4, "m"), (6, "s")))


@pytest.mark.parametrize("doc", _documents()[:4], ids=list(GOLDEN))
def test_backoff_never_cuts_retries_short_of_the_pod_deadline(doc):
    """backoff.maxDuration counts from the first attempt and becomes the retried pod's deadline
    (operator.go processNodeRetries); absent, or room for every attempt and every wait."""
    spec = doc["spec"]
    params = {p["name"]: p.get("value") for p in spec.get("arguments", {}).get("parameters", [])}
    for template in _pod_templates(doc):
        backoff = template["retryStrategy"]["backoff"]
        assert _seconds(backoff["cap"]) >= _seconds(backoff["duration"])
        if "maxDuration" in backoff:
            limit, deadline = int(params["retries"]), int(params["pod_deadline_seconds"])
            needed = (limit + 1) * deadline + limit * _seconds(backoff["cap"])
            assert _seconds(backoff["maxDuration"]) >= needed


def test_steps_form_leaves_fail_fast_off_so_retries_happen():
    """Argo's template failFast counts a Failed attempt that waits for its retry as a failed
    child and stops the template (operator.go checkParallelism; argo-workflows#16849): on by
    default, no transient failure would ever be retried. The dag form's dag.failFast defaults
    to true and looks at tasks (their retry nodes), so it is left at its default."""
    for o in SHAPES:
        for form in ("steps", "standalone"):
            main = next(t for t in FORMS[form](o).to_dict()["spec"]["templates"] if "steps" in t)
            assert "failFast" not in main
            assert all("retryStrategy" in t for t in _pod_templates(FORMS[form](o).to_dict()))
        dag = next(t for t in FORMS["dag"](o).to_dict()["spec"]["templates"] if "dag" in t)
        assert dag["dag"].get("failFast", True) is True and "failFast" not in dag
    chosen = Options(fail_fast=True)  # --fail-fast, for runs with -p retries=0
    for form in ("steps", "standalone"):
        doc = FORMS[form](chosen).to_dict()
        main = next(t for t in doc["spec"]["templates"] if "steps" in t)
        assert main["failFast"] is True
        assert validate(doc) == []
    waves = expand(FORMS["steps"](chosen).to_dict())
    assert [len(w) for w in waves] == [64, 32, 1]


def test_every_output_parameter_has_a_default():
    """A missing output file with no default is an executor error (executor.go SaveParameters)."""
    outputs = [
        p
        for doc in _documents()
        for t in doc["spec"].get("templates", [])
        for p in (t.get("outputs") or {}).get("parameters", [])
    ]
    assert outputs
    for p in outputs:  # a JSON object: parseable by whatever reads the output
        assert "path" in p["valueFrom"] and json.loads(p["valueFrom"]["default"]) in (
            {},
            {"bytes_in": 0, "bytes_out": 0, "rows_in": 0},  # the metrics line's, for Prometheus
        ), p


def test_output_defaults_reach_the_expander():
    [[final]] = expand(FORMS["steps"](Options(files=9)).to_dict())
    assert final.template == "merge-data" and final.output_defaults == {"summary": "{}"}
