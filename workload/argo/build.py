"""Hera builders for the tree: the seed's steps form, a dependency-exact DAG form, and the
Workflows that run them.

Both forms run the same two container templates with the seed's argv (`python3 process.py
<file_number> <level>`, `python3 merge.py 0 <number>`) in the image's working directory.

The steps form keeps the seed's `numbers` parameter (pods at level 1). Level L runs
ceil(numbers / fan_in ** (L - 1)) pods. Argo's expressions divide in floating point
(`asInt(n)/2` gives "32.5" for n = 65, which withSequence rejects), so counts use an integer
ceiling: `int((n + d - 1) / d)`. The fan-in and the number of levels are fixed when the manifest
is rendered (--files, --fan-in, --final-fan-in): they decide the shape of the tree, and the DAG
form's dependencies, so they are not parameters; level pods refuse a `-p numbers` other than
their input's width (--level-pods).

The DAG form is expanded when rendered: one task per pod (past Argo's 200 tasks, one per chunk of
consecutive pods), each depending only on the pods that write its inputs, so one slow pod never
holds back the whole next level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from hera.workflows import (
    DAG,
    Container,
    Env,
    Parameter,
    RetryStrategy,
    SecretEnv,
    Steps,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m
from pydantic import Field, SerializeAsAny

from workload import DEFAULT_IMAGE, layout
from workload.errors import (
    EXIT_CONFIG,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_NO_SPACE,
    EXIT_PERMISSION,
    EXIT_TRANSIENT,
    EXIT_USAGE,
    UsageError,
)

from . import eci

MOUNT = "/mnt/vol"
WORKDIR = "/app"
METRICS = "/tmp/metrics.json"
SUMMARY = "/tmp/summary.json"
# valueFrom.default of every output parameter. After main ends Argo's executor (in v4.1's
# init-less pods the supervisor container) reads each output file; a missing file without a
# default is an executor error (workflow/executor/executor.go, SaveParameters), and the
# supervisor exits non-zero. A failed main still names the node (inferFailedReason ranks main
# above the supervisor), but a pod whose main exited 0 would become an Error node, which the
# retry expression retries. With a default a missing file is never an executor error. An empty
# JSON object keeps the parameter parseable; the pods write their files whenever they succeed.
OUTPUT_DEFAULT = "{}"
# The metrics line's default holds zeros of the figures the Prometheus counters read, so their
# jsonpath finds them on an attempt that wrote no line (Argo evaluates a metric's value before
# its `when`; operator.go, computeMetrics).
METRICS_DEFAULT = json.dumps({"bytes_in": 0, "bytes_out": 0, "rows_in": 0}, separators=(",", ":"))
TEMPLATE_NAME = "process-data"
EXIT_TEMPLATE = "record-outcome"
# The run's own folder for the levels above l1 and the result (layout.run_path): the workflow's
# name, which Argo makes unique, so two runs on one root never write the same file.
RUN = "{{workflow.name}}"
LABEL = "workload"  # the prefix of our labels: workload/op, workload/level


@dataclass(frozen=True)
class Options(layout.Shape):
    """What a rendered manifest bakes in; everything else is a workflow parameter."""

    image: str = DEFAULT_IMAGE
    root: str = MOUNT
    op: str = "merge"
    # The PVC mounted at /mnt/vol (OSS or NAS); None for none, as a root that is a URL needs.
    claim: str | None = "pvc-oss"
    run: str = RUN  # the pods' --run; "" writes every level under the root itself (one run)
    clean: bool = False  # onExit: remove the run's levels above l1 once it has succeeded
    # Keep every pod's log in the controller's artifact repository (spec.archiveLogs), which
    # the operator must have configured: without it podGC takes the logs with the pods.
    archive_logs: bool = False
    # A pod still Pending after this (no node, no image, a missing PVC) fails its node instead
    # of waiting for the workflow's deadline (Argo v4's template pendingTimeout); "" for none.
    pending_timeout: str = "15m"
    # The input files' size, from a plan: level pods request the ephemeral storage that their
    # output, staged whole in /tmp on an object store, needs (None: no request).
    file_bytes: int | None = None
    secret: str = "oss-credentials"  # Secret with OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET
    oss_endpoint: str = ""
    service_account: str | None = None  # None: the controller's default for the namespace
    parallelism: int = 64
    retries: int = 3
    pod_deadline_seconds: int = 3600
    workflow_deadline_seconds: int = 6 * 3600
    priority: int = 0
    eci: bool = False  # Alibaba ECI: size pods by annotation
    spot: bool = False  # ECI spot instances (retries cover reclaimed pods)
    fail_fast: bool = False  # steps form: failFast on `main`; disables retries (see steps_template)
    level_cpu: str = "1"
    level_memory: str = "1Gi"
    final_cpu: str = "1"
    final_memory: str = "2Gi"
    ttl_seconds: int = 24 * 3600
    # The level pods' metrics line as an output parameter: Argo stores it on two nodes per pod
    # (about half of a finished run's status by argo/status.py's model), and nothing in the
    # workflow reads it; off, the pods still print it in their logs.
    metrics_output: bool = True
    # The pods' read budget on object stores (WORKLOAD_READ_BUDGET), from the plan; None: the
    # pods' default (workload.settings.Settings.read_budget).
    read_budget: int | None = None
    labels: dict[str, str] = field(default_factory=lambda: {"app.kubernetes.io/name": "workload"})

    def __post_init__(self):
        """Every value a manifest bakes in, checked: one line naming the first bad one."""
        self.plan  # noqa: B018 (the shape: files >= 1, fan-in >= 2, ...)
        for name in ("parallelism", "pod_deadline_seconds", "workflow_deadline_seconds"):
            _at_least(name, getattr(self, name), 1)
        _at_least("retries", self.retries, 0)
        _at_least("ttl_seconds", self.ttl_seconds, 0)
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise UsageError(f"--priority must be an integer, got {self.priority!r}")
        if self.pending_timeout and not DURATION.fullmatch(self.pending_timeout):
            raise UsageError(
                f"--pending-timeout {self.pending_timeout!r}: expected a duration such as 15m "
                f"or 90s"
            )
        if self.run not in ("", RUN):
            layout.check_run(self.run)
        if self.claim is None and "://" not in self.root:
            raise UsageError(
                f"--root {self.root!r} is a path in the pod, so it needs a volume there: give "
                f"--claim, or a root URL (oss://, s3://)"
            )
        for name in ("level_cpu", "final_cpu", "level_memory", "final_memory"):
            if not QUANTITY.fullmatch(getattr(self, name)):
                value = getattr(self, name)
                raise UsageError(f"{name} {value!r} is not a Kubernetes quantity")


# Go's time.ParseDuration, for the units a timeout takes.
DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(h|m|s|ms))+")
# Kubernetes' resource.Quantity (apimachinery/pkg/api/resource/quantity.go), without exponents.
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")


# The render flag of an option whose name is not its flag's.
FLAGS = {
    "pod_deadline_seconds": "--pod-deadline",
    "workflow_deadline_seconds": "--workflow-deadline",
    "ttl_seconds": "--ttl",
}


def _at_least(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        flag = FLAGS.get(name, "--" + name.replace("_", "-"))
        raise UsageError(f"{flag} must be an integer >= {minimum}, got {value!r}")


def _p(name: str) -> str:
    return "{{workflow.parameters." + name + "}}"


def _in(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def parameters(o: Options, numbers: bool = True) -> list[Parameter]:
    """The workflow's parameters, with defaults from the options."""
    plan = o.plan
    params = [Parameter(name="numbers", value=str(plan.pods(1)))] if numbers else []
    params += [
        Parameter(name="root", value=o.root),
        Parameter(name="image", value=o.image),
        Parameter(name="op", value=o.op, enum=_op_names(o.op)),
        Parameter(name="oss_endpoint", value=o.oss_endpoint),
        Parameter(name="retries", value=str(o.retries)),
        Parameter(name="pod_deadline_seconds", value=str(o.pod_deadline_seconds)),
    ]
    for level in range(1, plan.levels + 1):
        params += [
            Parameter(name=f"l{level}_cpu", value=o.level_cpu),
            Parameter(name=f"l{level}_memory", value=o.level_memory),
        ]
        if _stages(o):
            params.append(Parameter(name=f"l{level}_storage", value=storage_request(o, level)))
        if o.eci:  # set it beside l{level}_cpu and _memory when changing those at submit
            spec = eci.spec(o.level_cpu, o.level_memory)
            params.append(Parameter(name=f"l{level}_eci_spec", value=spec))
    params += [
        Parameter(name="final_cpu", value=o.final_cpu),
        Parameter(name="final_memory", value=o.final_memory),
    ]
    if o.eci:
        params.append(Parameter(name="final_eci_spec", value=eci.spec(o.final_cpu, o.final_memory)))
    return params


def _env(o: Options) -> list:
    # Credentials only by reference: the Secret's values never appear in a manifest. Optional,
    # so a PVC-only setup needs no Secret at all.
    return [
        Env(name="OSS_ENDPOINT", value=_p("oss_endpoint")),
        SecretEnv(
            name="OSS_ACCESS_KEY_ID",
            secret_name=o.secret,
            secret_key="OSS_ACCESS_KEY_ID",
            optional=True,
        ),
        SecretEnv(
            name="OSS_ACCESS_KEY_SECRET",
            secret_name=o.secret,
            secret_key="OSS_ACCESS_KEY_SECRET",
            optional=True,
        ),
    ] + ([Env(name="WORKLOAD_READ_BUDGET", value=str(o.read_budget))] if o.read_budget else [])


# -- what a retry fixes ------------------------------------------------------------------------
# Argo evaluates retryStrategy.expression on the last failed attempt with lastRetry.exitCode (the
# main container's exit code as a string, "-1" if it never terminated), lastRetry.status (the
# node phase, "Failed" or "Error") and lastRetry.message (the node message); see
# buildRetryStrategyLocalScope in workflow/controller/operator.go (Argo v4.1, f016ad89). Exit
# codes are decided only by lastRetry.exitCode, never by digits in a message.

# Argo's emissary (argoexec) exits 64 when it fails itself (cmd/argoexec/main.go, `return 64`).
# The controller marks that Error only for the children of a containerSet (operator.go,
# assessNodeStatus `case 64:`); for a plain container template inferFailedReason makes it a
# Failed node "main: Error (exit code 64): ...". Our pods never exit 64 (workload/errors.py), so
# the code is the emissary's, and it is retried by code.
EXIT_EMISSARY = 64
RETRY_EXIT_CODES = (EXIT_EMISSARY, EXIT_TRANSIENT)

# The pod's own verdict "retrying cannot help" (workload/errors.py). It wins over any status or
# message: e.g. main exited 66 while the supervisor was still collecting outputs and the pod was
# then deleted ("pod deleted", Error) or evicted.
FINAL_EXIT_CODES = (
    EXIT_USAGE,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_NO_SPACE,
    EXIT_PERMISSION,
    EXIT_CONFIG,
)

# Node messages of a pod the infrastructure took away. For a Failed pod with a pod-level
# status.message, Argo's node message is that message verbatim (operator.go, inferFailedReason:
# `if pod.Status.Message != "" { return wfv1.NodeFailed, pod.Status.Message }`); a message Argo
# builds from a terminated container always starts with "<container>: <reason> (exit code N)",
# followed by the container's termination message, which our stderr or an object name could
# reach. Every pattern is therefore anchored at the start of the message. RE2 and Python `re`
# agree on this subset (no escapes, no flags).
INFRASTRUCTURE_MESSAGES = {
    # kubelet node-pressure eviction, reason "Evicted": nodeLowMessageFmt in
    # kubernetes pkg/kubelet/eviction/helpers.go. Evictions for the pod's own ephemeral-storage
    # limits ("Container main exceeded its local ephemeral storage limit ...") are not retried:
    # like an OOM kill, they would happen again.
    "node-pressure eviction": "The node was low on resource: ",
    # kubelet refusing a pod on a node under pressure (same file, nodeConditionMessageFmt).
    "refused on a node under pressure": "The node had condition: ",
    # kubelet graceful node shutdown, reason "Terminated" (spot reclaim on most clouds), and the
    # refusal while shutting down: kubernetes pkg/kubelet/nodeshutdown/nodeshutdown_manager.go.
    "graceful node shutdown": "Pod was terminated in response to imminent node shutdown",
    "refused by a node shutting down": "Pod was rejected as the node is shutting down",
    # kubelet preemption for a critical pod, reason "Preempting":
    # kubernetes pkg/kubelet/preemption/preemption.go. (The scheduler's preemption deletes the
    # pod: Argo records "pod deleted".)
    "kubelet preemption": "Preempted in order to admit critical pod",
    # Alibaba ECI reclaiming a spot (preemptible) instance: phase Failed, reason BidFailed,
    # message "The pod is spot instance, and have been released at 2020-04-08T12:36Z" (ECI's
    # "Run jobs on a preemptible instance", https://www.alibabacloud.com/help/doc-detail/186545.htm).
    "ECI spot reclaim": "The pod is spot instance, and ha(s|ve) been released",
    # Argo itself when the pod vanished (operator.go, podReconciliation: markNodeError "pod
    # deleted"); that node is Error anyway, the pattern is Argo's own (docs/retries.md).
    "pod deleted": "pod deleted",
}
INFRASTRUCTURE_PATTERN = "^(" + "|".join(INFRASTRUCTURE_MESSAGES.values()) + ")"


def retry_expression() -> str:
    """Retry exactly what a retry can fix: the pod's own "transient" (75) or an emissary failure
    (64); else an Argo error (status Error: pod deleted, init/wait/supervisor failure) or a pod
    the infrastructure took away, unless the pod itself already said retrying cannot help."""
    code = "asInt(lastRetry.exitCode)"
    by_code = f"{code} in [{', '.join(map(str, RETRY_EXIT_CODES))}]"
    final = f"{code} in [{', '.join(map(str, FINAL_EXIT_CODES))}]"
    infrastructure = f"lastRetry.message matches '{INFRASTRUCTURE_PATTERN}'"
    return f'{by_code} || ((lastRetry.status == "Error" || {infrastructure}) && !({final}))'


BACKOFF = m.Backoff(duration="10s", factor=m.IntOrString(2), cap="5m")


def _op_names(chosen: str) -> list[str]:
    """The ops a run may pick: the registry's, and an op of the user's own ("module:attr")."""
    from workload import ops

    ops.get(chosen)  # refuse an op that does not resolve, at render time
    return [*ops.OPS, *([chosen] if chosen not in ops.OPS else [])]


def _retry() -> RetryStrategy:
    # retryPolicy Always: with an expression and no policy Argo v3.5+ lets the expression alone
    # decide (docs/retries.md), v3.4 and earlier would AND it with OnFailure (no Error nodes);
    # Always AND expression is the expression in every version.
    # No backoff.maxDuration: Argo counts it from the first attempt's start and hands the rest to
    # the retried pod as its deadline (operator.go processNodeRetries: executionDeadline =
    # maxDurationDeadline), so a late retry would get less than pod_deadline_seconds, or none at
    # all ("Backoff would exceed max duration limit"). Without it every attempt gets the full pod
    # deadline; the cap bounds each wait, and the attempts are bounded by `retries` and by the
    # workflow's activeDeadlineSeconds. Note that Argo waits the backoff before evaluating the
    # expression, so even a final failure is reported `duration` (10s) after the pod ends.
    return RetryStrategy(
        limit=_p("retries"),
        retry_policy="Always",
        expression=retry_expression(),
        backoff=BACKOFF,
    )


# -- Pod Security Standard "restricted" ----------------------------------------------------------
# Every container of our pods passes "restricted" (argo/security.py), Argo's init and wait
# included, with Argo's default controller config (argo/pod.py builds the pods offline).
# The pod's context, for all containers: the image's user and group (Dockerfile: useradd --uid
# 10001 --user-group, USER 10001:10001). The uid is needed, not only runAsNonRoot: Argo's
# default executor image (quay.io/argoproj/argoexec) has no USER, so the kubelet would refuse
# to start init and wait as root.
IMAGE_UID = 10001
# A pod-level context cannot say allowPrivilegeEscalation or capabilities, and Argo gives the
# init and wait containers of a container template only the controller's executor
# securityContext, none by default (workflow/controller/workflowpod.go, newExecContainer:
# Config.GetExecutor().SecurityContext; common.MinimalCtrSC is for resource templates). The
# template's podSpecPatch can: build() applies it (util.ApplyPodSpecPatch, a strategic merge
# patch, containers merged by name) after the init and wait containers are in place. For
# Argo's default legacy pod layout only: with the controller's opt-in initlessPod there is no
# init or wait container, and these entries would add containers without an image.
EXECUTOR_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod_security() -> m.PodSecurityContext:
    """The workflow's spec.securityContext (workflowpod.go, addSchedulingConstraints: every pod
    without a template securityContext gets it)."""
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=IMAGE_UID,
        run_as_group=IMAGE_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def _executor_security(patch: dict) -> dict:
    """`patch` with the securityContext of Argo's init and wait containers; wait stays ahead of
    main (a strategic merge keeps the patch's order)."""
    init = [{"name": "init", "securityContext": EXECUTOR_SECURITY}]
    wait = {"name": "wait", "securityContext": EXECUTOR_SECURITY}
    return {**patch, "initContainers": init, "containers": [wait, *patch["containers"]]}


class _TemplateV4(m.Template):
    """Hera 7.1's Template, with the Argo v4 field it lacks (its model drops unknown fields)."""

    pending_timeout: str | None = Field(default=None, alias="pendingTimeout")


class _SpecV4(m.WorkflowSpec):
    templates: list[SerializeAsAny[m.Template]] | None = None  # a _TemplateV4 keeps its field


@dataclass(kw_only=True)
class _Container(Container):
    pending_timeout: str | None = None

    def _build_template(self) -> m.Template:
        built = super()._build_template()
        return _TemplateV4(**dict(built), pendingTimeout=self.pending_timeout or None)


class _WorkflowModel(m.Workflow):
    spec: SerializeAsAny[m.WorkflowSpec]


class _WorkflowTemplateModel(m.WorkflowTemplate):
    spec: SerializeAsAny[m.WorkflowSpec]


class _V4:
    """A Workflow or WorkflowTemplate whose built model serializes _TemplateV4's fields (pydantic
    serializes a field by its declared type, not the value's), for the YAML and `submit` alike."""

    def build(self):
        built = super().build()
        model = _WorkflowModel if isinstance(built, m.Workflow) else _WorkflowTemplateModel
        return model(**{**dict(built), "spec": _SpecV4(**dict(built.spec))})


class WorkflowV4(_V4, Workflow):
    def __post_init__(self):
        self.kind = self.kind or "Workflow"  # Hera names the kind after the class
        super().__post_init__()


class WorkflowTemplateV4(_V4, WorkflowTemplate):
    def __post_init__(self):
        self.kind = self.kind or "WorkflowTemplate"
        super().__post_init__()


def _container(
    o: Options,
    name: str,
    inputs: list[str],
    args: list[str],
    outputs=None,
    *,
    metrics: list[m.Prometheus] | None = None,
    storage: bool = False,
    sizes: dict[str, str] | None = None,
):
    """A pod template of ours: sized by its `cpu` and `memory` inputs (and `storage`, its
    ephemeral-storage request; `eci_spec` with --eci), whose defaults `sizes` may give;
    labelled with its level when it has one."""
    resources = {"cpu": _in("cpu"), "memory": _in("memory")}
    requests = {**resources, **({"ephemeral-storage": _in("storage")} if storage else {})}
    annotations = {}
    if o.eci:  # the smallest ECI specification that holds the pod (argo/eci.py)
        annotations["k8s.aliyun.com/eci-use-specs"] = _in("eci_spec")
    if o.spot:
        annotations["k8s.aliyun.com/eci-spot-strategy"] = "SpotAsPriceGo"
    sized = ["cpu", "memory", *(["storage"] if storage else []), *(["eci_spec"] if o.eci else [])]
    defaults = sizes or {}
    return _Container(
        name=name,
        inputs=[_input(n, defaults.get(n)) for n in [*inputs, *sized]],
        outputs=outputs,
        image=_p("image"),
        command=["python3"],
        args=args,
        working_dir=WORKDIR,
        env=_env(o),
        labels={f"{LABEL}/level": _in("level")} if "level" in inputs else None,
        metrics=metrics,
        pending_timeout=o.pending_timeout,
        # Resources come from parameters, per level. A quantity field must match Kubernetes'
        # quantity pattern, which "{{...}}" does not, so they go through podSpecPatch, the
        # string field Argo substitutes before creating the pod. Ephemeral storage is only
        # requested: a limit would have the kubelet evict the pod, where a full disk is the
        # pod's own error (exit 71).
        pod_spec_patch=json.dumps(
            _executor_security(
                {
                    "containers": [
                        {"name": "main", "resources": {"requests": requests, "limits": resources}}
                    ]
                }
            ),
            separators=(",", ":"),
        ),
        security_context=m.SecurityContext(
            run_as_non_root=True,
            allow_privilege_escalation=False,
            capabilities=m.Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[m.VolumeMount(name="workdir", mount_path=MOUNT)] if o.claim else None,
        retry_strategy=_retry(),
        active_deadline_seconds=_p("pod_deadline_seconds"),
        annotations=annotations or None,
    )


def _input(name: str, default: str | None) -> Parameter:
    # Hera writes default=None as the string 'null': no default is no argument.
    return Parameter(name=name) if default is None else Parameter(name=name, default=default)


def _pod_options(o: Options) -> list[str]:
    run = ["--run", o.run] if o.run else []
    return ["--root", _p("root"), "--op", _p("op"), "--fan-in", str(o.fan_in), *run]


# -- Prometheus metrics, per template ----------------------------------------------------------
# Argo emits a template's metrics for each attempt that ends and is to be retried, and once for
# the pod's node (its Retry node) when that ends, in the scope of the node emitting: `duration`,
# `status`, its inputs and outputs (operator.go, executeTemplate and computeMetrics). `retries`
# is only in a Retry node's scope (steps.go, prepareMetricScope: set when the node has
# children), and the whole metric is substituted strictly before `when` is looked at: a metric
# that names it would be a MetricsError on every retried attempt. So attempts are counted, one
# per emission: a pod's retries are its emissions less one.
DURATION_BUCKETS = [m.Amount(root=float(b)) for b in (5, 15, 30, 60, 120, 300, 600, 1800, 3600)]


def _metrics(template: str, *, counts: bool) -> list[m.Prometheus]:
    # One set of label names per metric name, whichever template emits it (Prometheus' rule).
    labels = [
        m.MetricLabel(key="template", value=template),
        m.MetricLabel(key="level", value=_in("level")),
    ]
    done = [*labels, m.MetricLabel(key="status", value="{{status}}")]
    out = [
        m.Prometheus(
            name="workload_pod_duration_seconds",
            help="Seconds of each attempt retried, and of each pod node (its attempts included)",
            labels=done,
            histogram=m.Histogram(value="{{duration}}", buckets=DURATION_BUCKETS),
        ),
        m.Prometheus(
            name="workload_pod_ends_total",
            help="Pod nodes that ended, and attempts that ended to be retried, by status",
            labels=done,
            counter=m.Counter(value="1"),
        ),
    ]
    if not counts:
        return out
    # From the pod's metrics line (workload/metrics.py), for pods that succeeded (an attempt
    # without a line has METRICS_DEFAULT's zeros, for the jsonpath to find).
    for name, key, what in (
        ("workload_rows_total", "rows_in", "Rows the pods read"),
        ("workload_read_bytes_total", "bytes_in", "Bytes the pods read from storage"),
        ("workload_written_bytes_total", "bytes_out", "Bytes the pods wrote to storage"),
    ):
        out.append(
            m.Prometheus(
                name=name,
                help=what,
                labels=labels,
                when="{{status}} == Succeeded",
                counter=m.Counter(
                    value="{{=jsonpath(outputs.parameters.metrics, '$." + key + "')}}"
                ),
            )
        )
    return out


def templates(o: Options) -> tuple[Container, Container]:
    metrics = ["--metrics-file", METRICS] if o.metrics_output else []
    process = _container(
        o,
        "process-data",
        ["file_number", "level", "pods"],
        [
            "process.py",
            _in("file_number"),
            _in("level"),
            "--level-pods",
            _in("pods"),
            *_pod_options(o),
            *metrics,
        ],
        outputs=[
            Parameter(name="metrics", value_from=m.ValueFrom(path=METRICS, default=METRICS_DEFAULT))
        ]
        if o.metrics_output
        else None,
        metrics=_metrics("process-data", counts=o.metrics_output),
        storage=_stages(o),
    )
    merge = _container(
        o,
        "merge-data",
        ["number", "level"],
        [
            "merge.py",
            "0",
            _in("number"),
            "--level",
            _in("level"),
            *_pod_options(o),
            "--metrics-file",
            METRICS,
            "--summary-file",
            SUMMARY,
        ],
        outputs=[
            # globalName: the result's summary is the workflow's own output too, for `argo get`
            # and for a parent workflow (status.outputs.parameters).
            Parameter(
                name="summary",
                global_name="summary",
                value_from=m.ValueFrom(path=SUMMARY, default=OUTPUT_DEFAULT),
            )
        ],
        metrics=_metrics("merge-data", counts=False),
    )
    return process, merge


def exit_template(o: Options) -> Container:
    """onExit: record the run's outcome in its folder (RUN/outcome.json), and with --clean
    remove its levels above l1 once it has succeeded (workload/outcome.py)."""
    args = ["-m", "workload", "outcome", "--root", _p("root"), "--status", "{{workflow.status}}"]
    args += ["--run", o.run] if o.run else []
    args += ["--clean"] if o.clean else []
    sizes = {"cpu": EXIT_CPU, "memory": EXIT_MEMORY, "eci_spec": eci.spec(EXIT_CPU, EXIT_MEMORY)}
    return _container(o, EXIT_TEMPLATE, [], args, sizes=sizes)


EXIT_CPU, EXIT_MEMORY = "0.25", "256Mi"


def _stages(o: Options) -> bool:
    """Whether level pods request ephemeral storage: on a root URL with the files' size known,
    where each output is staged whole in the pod's /tmp (storage/upload.py)."""
    return o.file_bytes is not None and "://" in o.root


def storage_request(o: Options, level: int) -> str:
    """Ephemeral storage of a level-`level` pod: its output (as large as its inputs, for ops
    that keep their rows) plus a quarter, and 256 MiB for the interpreter's own /tmp."""
    assert o.file_bytes is not None
    output = o.file_bytes * o.fan_in**level
    return f"{-(-(output * 5 // 4 + 256 * 2**20) // 2**20)}Mi"


def pods_expression(level: int, fan_in: int) -> str:
    """Pods at `level` from the `numbers` parameter (pods at level 1), as an Argo expression."""
    if level == 1:
        return _p("numbers")
    d = fan_in ** (level - 1)
    return "{{=int((asInt(workflow.parameters.numbers) + " + f"{d - 1}) / {d})" + "}}"


def _resources(level: int | str, o: Options) -> dict[str, str]:
    prefix = f"l{level}" if isinstance(level, int) else level
    sized = {"cpu": _p(f"{prefix}_cpu"), "memory": _p(f"{prefix}_memory")}
    # The final pod: its result is per key, a size no plan gives; it requests none.
    if _stages(o) and isinstance(level, int):
        sized["storage"] = _p(f"{prefix}_storage")
    if o.eci:
        sized["eci_spec"] = _p(f"{prefix}_eci_spec")
    return sized


def _spec(o: Options) -> dict:
    volumes = (
        [
            m.Volume(
                name="workdir",
                persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(claim_name=o.claim),
            )
        ]
        if o.claim
        else None
    )
    op = {f"{LABEL}/op": _p("op")} if all(LABEL_VALUE.fullmatch(n) for n in _op_names(o.op)) else {}
    return {
        "entrypoint": "main",
        "on_exit": EXIT_TEMPLATE,
        # Labels on every run (a WorkflowTemplate's own labels do not pass to its runs) and on
        # every pod; Argo adds workflows.argoproj.io/workflow, the run's name, to each pod.
        "workflow_metadata": m.WorkflowMetadata(labels={**o.labels, **op}),
        "pod_metadata": m.Metadata(labels={**o.labels, **op}),
        "volumes": volumes,
        "parallelism": o.parallelism,
        "active_deadline_seconds": o.workflow_deadline_seconds,
        "pod_gc": m.PodGC(strategy="OnPodCompletion"),
        "archive_logs": o.archive_logs or None,
        "ttl_strategy": m.TTLStrategy(seconds_after_completion=o.ttl_seconds),
        "priority": o.priority,
        "service_account_name": o.service_account,
        "security_context": _pod_security(),
        "labels": o.labels,
    }


# Kubernetes' label value: an op of the user's own ("module:attr") is not one, and is not labelled.
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def steps_template(o: Options = Options(), name: str = TEMPLATE_NAME) -> WorkflowTemplate:
    """The seed's shape: level after level of `withSequence` steps, then the final pod."""
    plan = o.plan
    # failFast is off by default. On a steps template Argo's failFast (a template field, default
    # false) counts every Failed or Error pod in the template's boundary, and that includes an
    # attempt waiting for its retry: from the first failure the controller stops advancing the
    # template, so the retry is never started, and fails it once no pod is active (operator.go,
    # checkParallelism, "template has failed or errored children and failFast enabled";
    # argoproj/argo-workflows#16849, open for v4.1.2). Every transient failure would fail the run.
    # Without it a level whose shard failed for good still fails once its running pods end, and
    # no later level starts; only pods queued behind `parallelism` still start. `--fail-fast`
    # turns it on, for runs with `-p retries=0`. (The dag form needs nothing: dag.failFast
    # defaults to true and looks at tasks, whose retry nodes fail only when retries are over:
    # dag.go, assessDAGPhase.)
    with WorkflowTemplateV4(name=name, arguments=parameters(o), **_spec(o)) as wt:
        process, merge = templates(o)
        exit_template(o)
        with Steps(name="main", fail_fast=True if o.fail_fast else None):
            for level in range(1, plan.levels + 1):
                pods = pods_expression(level, o.fan_in)
                process(
                    name=f"process-data-l{level}",
                    arguments={
                        "file_number": "{{item}}",
                        "level": str(level),
                        "pods": pods,
                        **_resources(level, o),
                    },
                    with_sequence=m.Sequence(count=m.IntOrString(pods)),
                )
            # Without process levels the final pod reads the input files themselves.
            final = pods_expression(plan.levels, o.fan_in) if plan.levels else str(o.files)
            merge(
                name="merge-data",
                arguments={
                    "number": final,
                    "level": str(plan.final_level),
                    **_resources("final", o),
                },
            )
    return wt


def dag_template(o: Options = Options(), name: str = f"{TEMPLATE_NAME}-dag") -> WorkflowTemplate:
    """Level L+1 waits only for the level-L pods writing its inputs. While the level pods and
    the final pod fit in layout.MAX_DAG_TASKS, one task per pod. Beyond, each task runs
    `chunk` consecutive pods through withSequence, and a task waits for the tasks whose pods
    write its inputs: with the same chunk at every level, chunk j of level L+1 reads what
    chunks j*k .. j*k+k-1 of level L write (100,000 files at fan-in 16: 6,666 pods in 197
    tasks of up to 34 pods)."""
    plan = o.plan
    chunk = layout.dag_chunk(plan)
    with WorkflowTemplateV4(name=name, arguments=parameters(o, numbers=False), **_spec(o)) as wt:
        process, merge = templates(o)
        exit_template(o)
        with DAG(name="main"):
            previous: list[str] = []
            for level in range(1, plan.levels + 1):
                current, pods = [], plan.pods(level)
                for first in range(0, pods, chunk):
                    j = first // chunk
                    task = (
                        f"l{level}-{j}" if chunk == 1 else f"l{level}-{first}-{first + chunk - 1}"
                    )
                    count = min(chunk, pods - first)
                    args = {"level": str(level), "pods": str(pods), **_resources(level, o)}
                    if chunk == 1:
                        where: dict = {"arguments": {"file_number": str(first), **args}}
                    else:
                        where = {
                            "arguments": {"file_number": "{{item}}", **args},
                            "with_sequence": m.Sequence(
                                start=m.IntOrString(str(first)), count=m.IntOrString(str(count))
                            ),
                        }
                    producers = previous[j * o.fan_in : (j + 1) * o.fan_in]
                    process(name=task, dependencies=producers or None, **where)
                    current.append(task)
                previous = current
            merge(
                name="merge-data",
                arguments={
                    "number": str(plan.final_count),
                    "level": str(plan.final_level),
                    **_resources("final", o),
                },
                dependencies=previous or None,
            )
    return wt


def workflow_from_template(template: WorkflowTemplate, parameters: dict[str, str] | None = None):
    """A Workflow that runs a WorkflowTemplate by reference (`argo submit` or Hera)."""
    args = [Parameter(name=k, value=v) for k, v in (parameters or {}).items()]
    return Workflow(
        generate_name=f"{template.name}-",
        workflow_template_ref=m.WorkflowTemplateRef(name=template.name),
        arguments=args or None,
    )


def standalone_workflow(o: Options = Options(), form: str = "steps") -> Workflow:
    """A form as one self-contained Workflow; the steps form's is like the seed's YAML."""
    wt = (steps_template if form == "steps" else dag_template)(o)
    w = WorkflowV4(generate_name=f"{TEMPLATE_NAME}-", arguments=wt.arguments, **_spec(o))
    w.templates = wt.templates
    return w


def check_size(manifest, o: Options, form: str) -> None:
    """Refuse a manifest whose finished run would outgrow one Workflow object by the node model
    (argo/status.py): Argo would end the run in Error at that size (no status offload assumed).
    Its spec counts as rendered (a Workflow of a template holds the template's spec in its
    status, storedWorkflowTemplateSpec)."""
    from workload.errors import ConfigError

    from . import status

    plan = o.plan
    pods = [plan.pods(level) for level in range(1, plan.levels + 1)] + [1]
    spec = manifest if form != "workflow" else steps_template(o)
    spec_bytes = len(json.dumps(spec.to_dict(), separators=(",", ":")))
    shape = "dag" if form == "dag" else "steps"
    chunk = layout.dag_chunk(plan) if form == "dag" else 1
    size = status.size(
        pods,
        fan_in=o.fan_in,
        form=shape,
        spec_bytes=spec_bytes,
        outputs=o.metrics_output,
        chunk=chunk,
    )
    if not size.fits:
        raise ConfigError(
            f"{form} form for {o.files} files at fan-in {o.fan_in}: {size.nodes} nodes, "
            f"{size.total_bytes / 2**10:,.0f} KiB with status compressed, over Argo's "
            f"MAX_WORKFLOW_SIZE of 1,024 KiB; see `workload plan` (a larger --fan-in, or "
            f"--no-metrics-output)"
        )


FORMS = {
    "steps": lambda o: steps_template(o),
    "dag": lambda o: dag_template(o),
    "workflow": lambda o: workflow_from_template(steps_template(o)),
    "standalone": lambda o: standalone_workflow(o),
}
