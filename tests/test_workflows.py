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
        kind = "workflow" if "workflow" in body else "template"
        obj = body.get("workflow") or body.get("template")
        name = obj["metadata"].get("name") or obj["metadata"]["generateName"] + "x7k2p"
        namespace = self.path.rstrip("/").split("/")[-1]
        reply = {**obj, "metadata": {**obj["metadata"], "name": name, "namespace": namespace}}
        data = json.dumps(reply).encode()
        self.send_response(200 if kind else 500)
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
