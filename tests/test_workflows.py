"""The manifests: golden files without drift, Argo's own schema and rules, and submission."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import yaml

from workload.argo import __main__ as cli
from workload.argo.build import FORMS, Options, pods_expression, retry_expression
from workload.argo.validate import validate
from workload.testing.pods import REPO

SHAPES = [
    Options(),
    Options(files=9, fan_in=2, final_fan_in=2),
    Options(files=23, fan_in=3, final_fan_in=1, op="aggregate", eci=True, spot=True),
    Options(files=5, claim=None, root="oss://bucket/run", oss_endpoint="oss-cn-hangzhou.example"),
]

GOLDEN = cli.golden(REPO / "manifests")


@pytest.mark.parametrize("form", list(GOLDEN))
def test_golden_manifest_has_not_drifted(form):
    """Regenerate with `python -m workload.argo render`; compared as parsed documents."""
    committed = yaml.safe_load(GOLDEN[form].read_text())
    assert committed == FORMS[form](Options()).to_dict()


@pytest.mark.parametrize("options", SHAPES, ids=lambda o: f"{o.files}-{o.fan_in}-{o.op}")
@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_passes_the_strict_validator(form, options):
    assert validate(FORMS[form](options).to_dict()) == []


def test_credentials_only_by_secret_reference():
    for form in ("steps", "dag", "standalone"):
        doc = FORMS[form](Options()).to_dict()
        containers = [t["container"] for t in doc["spec"]["templates"] if "container" in t]
        assert containers
        for container in containers:
            env = {e["name"]: e for e in container["env"]}
            for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"):
                assert "value" not in env[name]
                assert env[name]["valueFrom"]["secretKeyRef"]["key"] == name


def test_steps_counts_use_an_integer_ceiling():
    # pods at level L = ceil(numbers / fan_in ** (L - 1)); never Argo's float "x.5"
    assert pods_expression(2, 2) == "{{=int((asInt(workflow.parameters.numbers) + 1) / 2)}}"
    assert pods_expression(3, 3) == "{{=int((asInt(workflow.parameters.numbers) + 8) / 9)}}"


def test_dag_tasks_depend_only_on_their_producers():
    doc = FORMS["dag"](Options(files=9, fan_in=2, final_fan_in=2)).to_dict()
    (main,) = [t for t in doc["spec"]["templates"] if t["name"] == "main"]
    deps = {t["name"]: t.get("dependencies") for t in main["dag"]["tasks"]}
    # 9 -> 5 -> 3 -> 2: level-2 pod 2 reads l2/4 only, written by l1-4
    assert deps["l1-0"] is None
    assert deps["l2-2"] == ["l1-4"]
    assert deps["l3-0"] == ["l2-0", "l2-1"]
    assert deps["merge-data"] == ["l3-0", "l3-1"]


def test_past_200_pods_dag_tasks_run_chunks_of_pods_and_wait_for_their_producers():
    """The CRD caps dag.tasks at 200: 256 files at fan-in 2 (224 level pods) run two pods per
    task through withSequence; a task waits for the tasks writing its inputs."""
    doc = FORMS["dag"](Options(files=256)).to_dict()
    (main,) = [t for t in doc["spec"]["templates"] if t["name"] == "main"]
    tasks = {t["name"]: t for t in main["dag"]["tasks"]}
    assert len(tasks) == 128 // 2 + 64 // 2 + 32 // 2 + 1 <= 200
    assert tasks["l1-0-1"]["withSequence"] == {"start": "0", "count": "2"}
    assert tasks["l1-126-127"]["withSequence"] == {"start": "126", "count": "2"}
    assert tasks["l2-2-3"]["dependencies"] == ["l1-4-5", "l1-6-7"]
    assert tasks["merge-data"]["dependencies"] == [f"l3-{i}-{i + 1}" for i in range(0, 32, 2)]


def test_every_pod_template_retries_by_the_same_strategy():
    """What the expression retries is tested case by case in test_retry_expression.py."""
    for options in SHAPES:
        for form in ("steps", "dag", "standalone"):
            doc = FORMS[form](options).to_dict()
            pods = [t for t in doc["spec"]["templates"] if "container" in t]
            names = {t["name"] for t in pods}
            assert names == {"process-data", "merge-data", "record-outcome"}
            for template in pods:
                retry = template["retryStrategy"]
                assert retry["expression"] == retry_expression()
                assert retry["retryPolicy"] == "Always"
                assert retry["limit"] == "{{workflow.parameters.retries}}"
                assert retry["backoff"] == {"duration": "10s", "factor": 2, "cap": "5m"}


class _FakeArgo(BaseHTTPRequestHandler):
    requests: ClassVar[list] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, self.headers.get("Authorization"), body))
        obj = body.get("workflow") or body.get("template")
        name = obj["metadata"].get("name") or obj["metadata"]["generateName"] + "x7k2p"
        namespace = self.path.rstrip("/").split("/")[-1]
        reply = {**obj, "metadata": {**obj["metadata"], "name": name, "namespace": namespace}}
        data = json.dumps(reply).encode()
        status = {"forbidden": 403, "busy": 503, "bad": 400}.get(namespace, 200)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_argo():
    _FakeArgo.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeArgo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _FakeArgo.requests
    server.shutdown()


def test_submit_standalone_with_parameters(fake_argo, monkeypatch, capsys):
    host, seen = fake_argo
    monkeypatch.setenv("ARGO_TOKEN", "Bearer t0ken-value")
    code = cli.main(
        [
            "submit",
            "--host",
            host,
            "--namespace",
            "batch",
            "-p",
            "numbers=32",
            "-p",
            "op=aggregate",
            "--image",
            "my.registry/workload:1",
        ]
    )
    assert code == 0
    ((path, auth, body),) = seen
    assert path == "/api/v1/workflows/batch"
    assert auth == "Bearer t0ken-value"
    wf = body["workflow"]
    assert wf["metadata"]["generateName"] == "process-data-"
    params = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]}
    assert params["numbers"] == "32" and params["op"] == "aggregate"
    assert params["image"] == "my.registry/workload:1"
    assert validate(wf | {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow"}) == []
    assert "submitted process-data-x7k2p in namespace batch" in capsys.readouterr().out
    # What Hera's model of Argo v3 lacks reaches the server too (build._TemplateV4).
    pods = [t for t in wf["spec"]["templates"] if "container" in t]
    assert pods and all(t["pendingTimeout"] == "15m" for t in pods)


@pytest.mark.parametrize(
    "namespace,code", [("forbidden", 77), ("bad", 78), ("busy", 75), ("unreachable", 75)]
)
def test_a_refused_submission_is_one_line_with_a_code_from_its_http_status(
    fake_argo, monkeypatch, capsys, namespace, code
):
    host, _ = fake_argo
    monkeypatch.setenv("ARGO_TOKEN", "s3cret-t0ken")
    if namespace == "unreachable":
        host = "http://127.0.0.1:9"  # the discard port: nothing listens
    assert cli.main(["submit", "--host", host, "--namespace", namespace]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Workflow process-data-" in err
    assert "s3cret-t0ken" not in err


def test_submit_template_then_workflow_by_reference(fake_argo, monkeypatch):
    host, seen = fake_argo
    monkeypatch.setenv("ARGO_TOKEN", "t0ken-value")
    assert (
        cli.main(["submit", "--host", host, "--form", "dag", "--template", "-p", "op=aggregate"])
        == 0
    )
    (tpath, _, tbody), (wpath, auth, wbody) = seen
    assert tpath == "/api/v1/workflow-templates/argo"
    assert tbody["template"]["metadata"]["name"] == "process-data-dag"
    pods = [t for t in tbody["template"]["spec"]["templates"] if "container" in t]
    assert pods and all(t["pendingTimeout"] == "15m" for t in pods)
    assert wpath == "/api/v1/workflows/argo"
    assert auth == "Bearer t0ken-value"
    assert wbody["workflow"]["spec"]["workflowTemplateRef"] == {"name": "process-data-dag"}
    assert wbody["workflow"]["spec"]["arguments"]["parameters"] == [
        {"name": "op", "value": "aggregate"}
    ]


@pytest.mark.parametrize("template", [[], ["--template"]])
def test_submit_rejects_unknown_parameters_before_creating_anything(fake_argo, template, capsys):
    host, seen = fake_argo
    assert cli.main(["submit", "--host", host, *template, "-p", "fan_in=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "-p fan_in: the" in err[0] and "no such parameter" in err[0]
    assert seen == []


def test_no_service_account_is_forced_unless_one_is_asked_for(capsys):
    """The controller's workflow defaults (or the namespace's default account) decide, unless
    `--service-account` says: a forced `default` without the executor's RBAC fails every pod."""
    for form in FORMS:
        assert "serviceAccountName" not in FORMS[form](Options()).to_dict()["spec"]
    assert cli.main(["render", "--form", "steps", "--service-account", "workload-runner"]) == 0
    assert "serviceAccountName: workload-runner" in capsys.readouterr().out


# -- what an operator deploys unchanged --------------------------------------------------------
def _templates(doc: dict) -> dict[str, dict]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def _render(capsys, *flags: str) -> tuple[int, dict | None, str]:
    code = cli.main(["render", "--form", "standalone", *flags])
    out, err = capsys.readouterr()
    return code, (yaml.safe_load(out) if code == 0 else None), err


def test_every_pod_writes_under_its_runs_name_and_the_run_ends_with_its_exit_handler():
    for form in ("steps", "dag", "standalone"):
        doc = FORMS[form](Options()).to_dict()
        pods = [t for t in doc["spec"]["templates"] if "container" in t]
        for t in pods:
            args = t["container"]["args"]
            assert args[args.index("--run") + 1] == "{{workflow.name}}", t["name"]
            assert t["pendingTimeout"] == "15m"
        assert doc["spec"]["onExit"] == "record-outcome"
        handler = _templates(doc)["record-outcome"]["container"]["args"]
        assert handler[:3] == ["-m", "workload", "outcome"]
        assert "{{workflow.status}}" in handler and "--clean" not in handler
    clean = FORMS["standalone"](Options(clean=True, run="")).to_dict()
    handler = _templates(clean)["record-outcome"]["container"]["args"]
    assert "--clean" in handler and "--run" not in handler  # --run "": the root's own layout
    assert all(
        "--run" not in t["container"]["args"]
        for t in _templates(clean).values()
        if "container" in t
    )


def test_the_summary_is_the_workflows_output_and_runs_and_pods_are_labelled():
    doc = FORMS["standalone"](Options(op="aggregate")).to_dict()
    [summary] = _templates(doc)["merge-data"]["outputs"]["parameters"]
    assert summary["globalName"] == "summary"
    op = {"workload/op": "{{workflow.parameters.op}}", "app.kubernetes.io/name": "workload"}
    assert doc["spec"]["workflowMetadata"]["labels"] == op
    assert doc["spec"]["podMetadata"]["labels"] == op
    level = {"workload/level": "{{inputs.parameters.level}}"}
    assert _templates(doc)["process-data"]["metadata"]["labels"] == level
    # An op of the user's own ("module:attribute") is no label value: the run is not labelled.
    custom = FORMS["standalone"](Options(op="tests.ops_distinct:DISTINCT")).to_dict()
    assert "workload/op" not in custom["spec"]["podMetadata"]["labels"]


def test_each_pod_template_reports_prometheus_metrics_from_its_node_and_metrics_line():
    doc = FORMS["standalone"](Options()).to_dict()
    for name in ("process-data", "merge-data"):
        metrics = {p["name"]: p for p in _templates(doc)[name]["metrics"]["prometheus"]}
        assert metrics["workload_pod_duration_seconds"]["histogram"]["value"] == "{{duration}}"
        assert metrics["workload_pod_ends_total"]["counter"]["value"] == "1"
        # Never {{retries}}: it is not in an attempt's scope, and Argo substitutes strictly.
        assert "{{retries}}" not in json.dumps(metrics)
        # One set of label names per metric, whichever template emits it.
        for p in metrics.values():
            assert [label["key"] for label in p["labels"]][:2] == ["template", "level"]
            assert p["help"]
    level = {p["name"]: p for p in _templates(doc)["process-data"]["metrics"]["prometheus"]}
    rows = level["workload_rows_total"]
    assert rows["when"] == "{{status}} == Succeeded"
    assert rows["counter"]["value"] == "{{=jsonpath(outputs.parameters.metrics, '$.rows_in')}}"
    bare = FORMS["standalone"](Options(metrics_output=False)).to_dict()
    names = {p["name"] for p in _templates(bare)["process-data"]["metrics"]["prometheus"]}
    assert names == {"workload_pod_duration_seconds", "workload_pod_ends_total"}
    # An attempt without a metrics line gets zeros, which the counters' jsonpath can read.
    [output] = _templates(doc)["process-data"]["outputs"]["parameters"]
    zeros = {"bytes_in": 0, "bytes_out": 0, "rows_in": 0}
    assert json.loads(output["valueFrom"]["default"]) == zeros


def test_a_root_url_needs_no_volume_and_a_path_needs_one(capsys):
    code, doc, _ = _render(capsys, "--root", "oss://bucket/data")
    assert code == 0 and "volumes" not in doc["spec"]
    assert all("volumeMounts" not in t.get("container", {}) for t in doc["spec"]["templates"])
    code, doc, _ = _render(capsys, "--root", "oss://bucket/data", "--claim", "nas")
    assert doc["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "nas"
    code, _, err = _render(capsys, "--claim", "")
    assert code == 2 and err.count("\n") == 1 and "--root '/mnt/vol'" in err


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--files", "0"], "files"),
        (["--fan-in", "0"], "fan-in"),
        (["--fan-in", "1"], "fan-in"),
        (["--final-fan-in", "0"], "final-fan-in"),
        (["--parallelism", "0"], "--parallelism"),
        (["--retries", "-1"], "--retries"),
        (["--pod-deadline", "0"], "--pod-deadline"),
        (["--workflow-deadline", "-5"], "--workflow-deadline"),
        (["--ttl", "-1"], "--ttl"),
        (["--pending-timeout", "15 minutes"], "--pending-timeout"),
        (["--run", "l2"], "--run"),
        (["--run", "a/b"], "--run"),
    ],
)
def test_every_bad_render_flag_is_refused_in_one_line(capsys, flags, named):
    code, _, err = _render(capsys, *flags)
    assert code == 2, flags
    assert err.count("\n") == 1 and named in err, err


def test_render_flags_reach_the_manifest(capsys):
    code, doc, _ = _render(
        capsys,
        *("--parallelism", "8", "--retries", "5", "--pod-deadline", "600"),
        *("--workflow-deadline", "7200", "--ttl", "60", "--priority", "-3"),
        *("--pending-timeout", "2m30s"),
    )
    assert code == 0
    spec = doc["spec"]
    assert (spec["parallelism"], spec["activeDeadlineSeconds"], spec["priority"]) == (8, 7200, -3)
    assert spec["ttlStrategy"] == {"secondsAfterCompletion": 60}
    params = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
    assert (params["retries"], params["pod_deadline_seconds"]) == ("5", "600")
    assert _templates(doc)["process-data"]["pendingTimeout"] == "2m30s"
    _, doc, _ = _render(capsys, "--pending-timeout", "")
    assert "pendingTimeout" not in _templates(doc)["process-data"]
    assert "archiveLogs" not in doc["spec"]
    _, doc, _ = _render(capsys, "--archive-logs")
    assert doc["spec"]["archiveLogs"] is True


def test_eci_sizes_each_pod_by_the_smallest_eci_specification_that_holds_it():
    """ECI has no "1-1Gi" (1 vCPU comes with 2, 4 or 8 GiB) and reads no "500m"."""
    doc = FORMS["standalone"](Options(eci=True, level_cpu="500m", final_memory="3Gi")).to_dict()
    params = {p["name"]: p["value"] for p in doc["spec"]["arguments"]["parameters"]}
    assert (params["l1_cpu"], params["l1_eci_spec"], params["final_eci_spec"]) == (
        "500m",
        "0.5-1Gi",
        "1-4Gi",
    )
    assert FORMS["standalone"](Options(eci=True)).to_dict()["spec"]["arguments"]["parameters"]
    for name, t in _templates(doc).items():
        if "container" in t:
            spec = t["metadata"]["annotations"]["k8s.aliyun.com/eci-use-specs"]
            assert spec == "{{inputs.parameters.eci_spec}}", name
    assert validate(doc) == []


@pytest.mark.parametrize(
    "cpu,memory,spec",
    [
        ("1", "1Gi", "1-2Gi"),
        ("0.25", "256Mi", "0.25-0.5Gi"),
        ("3", "5Gi", "4-8Gi"),
        ("2", "1740Mi", "2-2Gi"),
    ],
)
def test_eci_specifications_round_up(cpu, memory, spec):
    from workload.argo.eci import spec as eci_spec

    assert eci_spec(cpu, memory) == spec


def test_a_plans_file_size_sizes_each_levels_ephemeral_storage_on_an_object_store():
    """Each output is staged whole in the pod's /tmp before its upload: request it."""
    options = Options(files=128, root="oss://b/x", claim=None, file_bytes=14 * 2**20)
    doc = FORMS["standalone"](options).to_dict()
    params = {p["name"]: p["value"] for p in doc["spec"]["arguments"]["parameters"]}
    # level L writes 14 MiB * 2**L, plus a quarter, plus 256 MiB
    assert [params[f"l{level}_storage"] for level in (1, 2)] == ["291Mi", "326Mi"]
    patch = json.loads(_templates(doc)["process-data"]["podSpecPatch"])
    main = next(c for c in patch["containers"] if c["name"] == "main")
    assert main["resources"]["requests"]["ephemeral-storage"] == "{{inputs.parameters.storage}}"
    assert "ephemeral-storage" not in main["resources"]["limits"]  # a limit would evict
    assert validate(doc) == []
    # On a PVC root the output is written beside its target: nothing to request.
    pvc = FORMS["standalone"](Options(files=128, file_bytes=14 * 2**20)).to_dict()
    assert not any(p["name"].endswith("_storage") for p in pvc["spec"]["arguments"]["parameters"])
