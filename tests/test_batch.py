"""Batch Compute: this tree as Batch jobs (workload batch render), checked offline against
botocore's Batch model, submitted in order to moto's Batch API, run here pod by pod, and
converted to Argo (workload migrate); four routes give `workload run`'s result bit for bit; the
seed's own Batch JSON converts, and runs once it says which level each job reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import boto3
import pytest
import requests
import yaml
from moto.server import ThreadedMotoServer

from workload import cli, errors, run_local
from workload.argo import local as argo_local
from workload.argo.__main__ import main as argo_main
from workload.argo.build import FORMS
from workload.argo.build import Options as ArgoOptions
from workload.argo.expand import expand as expand_argo
from workload.argo.expr import evaluate_condition
from workload.argo.validate import validate
from workload.batch import local as batch_local
from workload.batch import model
from workload.batch.build import Options, render
from workload.batch.migrate import convert, read, retry_expression
from workload.batch.submit import submit
from workload.generate import generate
from workload.settings import Settings
from workload.storage import open_store
from workload.testing.pods import result_files as _result

SEED = Path(__file__).resolve().parent / "fixtures" / "seed-004-batch.json"
ROWS, KEYS, GEN_SEED = 300, 2000, 7
SHAPES = [(128, 2, 32), (9, 2, 2), (23, 3, 2)]  # the seed's, and two odd ones


@pytest.fixture(scope="module")
def app():
    with argo_local.image_workdir() as folder:
        yield folder


def _inputs(root: str, files: int) -> None:
    generate(open_store(root), files, ROWS, KEYS, GEN_SEED)


# -- the Batch file ------------------------------------------------------------------------------
def test_the_default_batch_file_is_the_seeds_chain():
    doc = render(Options())
    jobs = doc["jobs"]
    sizes = [(j["jobName"], (j.get("arrayProperties") or {}).get("size")) for j in jobs]
    assert sizes == [("process-data-l1", 64), ("process-data-l2", 32), ("merge-data", None)]
    assert [j.get("dependsOn") for j in jobs] == [
        None,
        [{"jobId": "process-data-l1"}],
        [{"jobId": "process-data-l2"}],
    ]
    assert jobs[2]["parameters"] == {"number": "32", "level": "3"}
    assert model.problems(doc) == []
    process = doc["jobDefinitions"][0]
    assert process["containerProperties"]["command"][:3] == ["python3", "process.py", "Ref::level"]
    rules = process["retryStrategy"]["evaluateOnExit"]
    assert len(rules) <= model.MAX_EXIT_RULES and process["retryStrategy"]["attempts"] == 4
    # the exit-code table: 75 and 64 retried, a final code ends the job
    expression = retry_expression(rules)
    for code, retried in (("75", True), ("64", True), ("66", False), ("2", False)):
        scope = {"lastRetry.exitCode": code, "lastRetry.message": "Error (exit code 1)"}
        assert evaluate_condition(expression, scope) is retried, code


def test_a_level_of_one_pod_is_a_plain_job_with_its_index_in_its_command():
    doc = render(Options(files=23, fan_in=3, final_fan_in=2))  # 23 -> 8 -> 3 -> 1 -> result
    one = doc["jobs"][2]
    assert "arrayProperties" not in one and one["jobDefinition"] == "process-data-one"
    assert model.problems(doc) == []


@pytest.mark.parametrize(
    "change, phrase",
    [
        (
            lambda d: d["jobDefinitions"][0].update(platformCapabilities=["GPU"]),
            "'GPU' is not one of",
        ),
        (lambda d: d["jobs"][0]["arrayProperties"].update(size=1), "outside 2..10000"),
        (lambda d: d["jobs"][1].update(dependsOn=[{"jobId": "x"}] * 21), "over 20"),
        (lambda d: d["jobDefinitions"][0]["retryStrategy"].update(attempts=11), "outside 1..10"),
        (lambda d: d["jobDefinitions"][1]["timeout"].update(attemptDurationSeconds=30), "under 60"),
        (lambda d: d["jobs"][0].update(bogus=1), 'Unknown parameter in input: "bogus"'),
        (lambda d: d["jobs"][0].update(jobQueue=5), "Invalid type for parameter jobQueue"),
        (
            lambda d: d["jobs"][1].update(dependsOn=[{"jobId": "later"}]),
            "'later' is no earlier job",
        ),
    ],
)
def test_what_batch_would_refuse_is_named(change, phrase):
    doc = render(Options())
    change(doc)
    found = model.problems(doc)
    assert any(phrase in line for line in found), found
    with pytest.raises(errors.ConfigError, match=r"^(RegisterJobDefinition|SubmitJob) "):
        model.check(doc)


def test_render_refuses_a_level_wider_than_an_array(capsys):
    assert cli.main(["batch", "render", "--files", "30000"]) == errors.EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "15000 pods, over Batch's array size of 10000" in err[0]


def test_validate_reads_files_and_names_their_problems(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.yaml"
    good.write_text(json.dumps(render(Options())))
    doc = render(Options())
    doc["jobs"][0]["arrayProperties"]["size"] = 20_000
    bad.write_text(yaml.safe_dump(doc))
    assert cli.main(["batch", "validate", str(good)]) == 0
    assert cli.main(["batch", "validate", str(good), str(bad)]) == 1
    assert "outside 2..10000" in capsys.readouterr().err


# -- submitted to moto's Batch API -------------------------------------------------------------
@pytest.fixture(scope="module")
def batch_client():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto would start each job in a container engine: take the jobs as they are instead
        requests.post(f"{url}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=10)
        kw = dict(
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test-key",
            aws_secret_access_key="test-secret",
        )
        role = boto3.client("iam", **kw).create_role(
            RoleName="batch", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        client = boto3.client("batch", **kw)
        environment = client.create_compute_environment(
            computeEnvironmentName="workload-ce",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role,
        )["computeEnvironmentArn"]
        client.create_job_queue(
            jobQueueName="workload",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )
        yield client
    finally:
        server.stop()


def test_submit_registers_then_submits_in_order_chaining_the_returned_ids(batch_client):
    doc = render(Options(files=9, final_fan_in=2))  # 9 -> 5 -> 3 -> 2 -> result
    said: list[str] = []
    ids = submit(doc, batch_client, say=said.append)
    assert [line.split()[:2] for line in said] == [
        ["registered", "process-data"],
        ["registered", "merge-data"],
        ["submitted", "process-data-l1"],
        ["submitted", "process-data-l2"],
        ["submitted", "process-data-l3"],
        ["submitted", "merge-data"],
    ]
    names = [j["jobName"] for j in doc["jobs"]]
    described = {
        j["jobName"]: j for j in batch_client.describe_jobs(jobs=list(ids.values()))["jobs"]
    }
    for previous, name in zip([None, *names], names, strict=False):
        job = described[name]
        assert job["jobId"] == ids[name]
        assert job["dependsOn"] == ([{"jobId": ids[previous]}] if previous else [])
        assert job["jobDefinition"].endswith(
            f"job-definition/{job['jobDefinition'].split('/')[-1]}"
        )
    assert [(described[n].get("arrayProperties") or {}).get("size") for n in names] == [
        5,
        3,
        2,
        None,
    ]
    assert described["merge-data"]["parameters"]["number"] == "2"
    registered = batch_client.describe_job_definitions(jobDefinitionName="process-data")
    strategy = registered["jobDefinitions"][0]["retryStrategy"]
    assert strategy["attempts"] == 4 and len(strategy["evaluateOnExit"]) == 4


def test_a_refused_submission_is_one_line_and_a_code_from_its_status(batch_client):
    doc = render(Options(files=9, job_queue="no-such-queue"))
    with pytest.raises(
        errors.ConfigError, match=r"submit job 'merge-data': Batch refused it \(4\d\d "
    ):
        submit(doc, batch_client, say=lambda line: None)


# -- four routes, one result -------------------------------------------------------------------
@pytest.mark.parametrize("files, fan_in, final_fan_in", SHAPES)
def test_four_routes_give_the_same_result_bit_for_bit(files, fan_in, final_fan_in, tmp_path, app):
    """`workload run`; our Argo manifest run pod by pod; our Batch file run pod by pod; and the
    converter's Workflow for our Batch file run pod by pod."""
    shape = {"files": files, "fan_in": fan_in, "final_fan_in": final_fan_in}
    results = {}
    root = str(tmp_path / "run")
    settings = Settings.load(root=root, fan_in=fan_in)
    report = run_local.run(
        settings, files=files, rows=ROWS, keys=KEYS, seed=GEN_SEED, final_fan_in=final_fan_in
    )
    assert report["verified"]
    results["workload run"] = _result(root)

    root = str(tmp_path / "argo")
    _inputs(root, files)
    manifest = FORMS["standalone"](ArgoOptions(**shape)).to_dict()
    argo_local.run(expand_argo(manifest, {"root": root}, name="run-1"), app, in_process=True)
    results["argo"] = _result(root, "run-1")  # the manifest's run writes under its name

    batch = render(Options(**shape))
    root = str(tmp_path / "batch")
    _inputs(root, files)
    argo_local.run(batch_local.expand(batch), app, volume=root, in_process=True)
    results["batch"] = _result(root)

    migrated = yaml.safe_load(convert(batch).to_yaml())
    assert validate(migrated) == []
    root = str(tmp_path / "migrated")
    _inputs(root, files)
    argo_local.run(expand_argo(migrated), app, volume=root, in_process=True)
    results["migrated"] = _result(root)

    assert len(set(results.values())) == 1, {k: len(v[0]) for k, v in results.items()}


def test_batch_run_local_from_the_command_line(tmp_path, capsys):
    batch, root = tmp_path / "batch.json", tmp_path / "vol"
    assert cli.main(["batch", "render", "--files", "9", "--final-fan-in", "2"]) == 0
    batch.write_text(capsys.readouterr().out)
    _inputs(str(root), 9)
    args = ["batch", "run-local", str(batch), "--volume", f"workdir={root}", "--parallelism", "3"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "11 pods in 4 waves, all succeeded"
    assert cli.main(["verify", "--root", str(root)]) == 0
    # what it cannot map is refused by name
    assert cli.main(["batch", "run-local", str(batch)]) == errors.EXIT_CONFIG
    assert "pass --volume workdir=PATH" in capsys.readouterr().err


# -- the seed's own Batch JSON -----------------------------------------------------------------
def test_the_seeds_batch_json_converts_and_names_what_has_no_mapping(tmp_path, capsys):
    assert cli.main(["migrate", str(SEED)]) == errors.EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 Batch fields have no mapping" in err[0]
    assert err[0].count("executionRoleArn") == 2
    out = tmp_path / "seed.yaml"
    assert cli.main(["migrate", str(SEED), "--lenient", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# workload migrate --lenient:") and text.count("#   ") == 2
    doc = yaml.safe_load(text)
    assert validate(doc) == []
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    assert templates["merge-data"]["metadata"]["annotations"] == {
        "k8s.aliyun.com/eci-use-specs": "1-2Gi",  # Serverless Container, 1.0 vCPU, 2048 MiB
        "k8s.aliyun.com/eci-with-eip": "true",  # assignPublicIp ENABLED
    }
    assert templates["process-data"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
    }
    waves = expand_argo(doc)
    assert [len(w) for w in waves] == [64, 32, 1]  # the dependencies by the seed's job ids
    assert [p.env["AWS_BATCH_JOB_ARRAY_INDEX"] for p in waves[0]] == [str(i) for i in range(64)]
    assert {tuple(p.argv) for p in waves[0] + waves[1]} == {("python", "process.py")}


def _seed_with(*, levels: bool) -> list:
    """The seed's JSON, saying what the article leaves out: where the files are (its Argo YAML
    mounts a PVC at /mnt/vol; its Batch JSON mounts nothing) and, with `levels`, which level
    each job reads (its revision :2 of process-data must differ from :1 somehow; the article
    does not show how)."""
    objects = json.loads(SEED.read_text())
    for obj in objects:
        container = obj.get("containerProperties")
        if container is not None:
            container["volumes"] = [{"name": "workdir", "host": {"sourcePath": "/mnt/vol"}}]
            container["mountPoints"] = [{"sourceVolume": "workdir", "containerPath": "/mnt/vol"}]
        if levels and obj.get("jobDefinitionName") == "process-data":
            container["command"] = ["python", "process.py", "Ref::level"]
        if levels and obj.get("jobDefinitionName") == "merge-data":
            container["command"] = ["python", "merge.py", "0", "32"]
        if levels and obj.get("jobName", "").startswith("process-data-l"):
            obj["parameters"] = {"level": obj["jobName"][-1]}
    return objects


def _migrated(tmp_path: Path, objects: list) -> dict:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(objects))
    doc = yaml.safe_load(convert(read(path), lenient=True).to_yaml())
    assert validate(doc) == []
    return doc


def test_the_seeds_batch_json_runs_locally_once_it_says_its_levels(tmp_path, app):
    root = str(tmp_path / "vol")
    _inputs(root, 128)
    as_printed = _migrated(tmp_path, _seed_with(levels=False))
    with pytest.raises(argo_local.PodFailed) as failed:  # `python process.py`: which level?
        argo_local.run([expand_argo(as_printed)[0][:1]], app, volume=root)
    assert failed.value.exit_code == errors.EXIT_USAGE
    migrated = _migrated(tmp_path, _seed_with(levels=True))
    argo_local.run(expand_argo(migrated), app, volume=root, in_process=True)
    reference = str(tmp_path / "reference")
    run_local.run(Settings.load(root=reference), files=128, rows=ROWS, keys=KEYS, seed=GEN_SEED)
    assert _result(root) == _result(reference)


# -- secrets, plans, the command line ----------------------------------------------------------
def test_secrets_go_by_reference_and_map_to_one_kubernetes_secret(tmp_path, app, capsys):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:oss"
    with pytest.raises(errors.ConfigError, match="need --execution-role-arn"):
        render(Options(files=9, secret_arn=arn))
    role = "arn:aws:iam::123456789012:role/batch-execution"
    batch = render(Options(files=9, final_fan_in=2, secret_arn=arn, execution_role_arn=role))
    assert model.problems(batch) == []
    secrets = batch["jobDefinitions"][0]["containerProperties"]["secrets"]
    assert secrets[0] == {"name": "OSS_ACCESS_KEY_ID", "valueFrom": f"{arn}:OSS_ACCESS_KEY_ID::"}
    root = str(tmp_path / "vol")
    _inputs(root, 9)
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    given = [f"{arn}:OSS_ACCESS_KEY_ID::=key-id", f"{arn}:OSS_ACCESS_KEY_SECRET::=not-shown"]
    args = ["batch", "run-local", str(path), "--volume", f"workdir={root}"]
    assert cli.main([*args, "--secret", given[0]]) == errors.EXIT_CONFIG  # one is missing
    assert "OSS_ACCESS_KEY_SECRET" in capsys.readouterr().err
    assert cli.main([*args, *(a for g in given for a in ("--secret", g))]) == 0
    assert "not-shown" not in capsys.readouterr().out
    migrated = yaml.safe_load(convert(batch, secret="oss", lenient=True).to_yaml())
    env = {e["name"]: e for e in migrated["spec"]["templates"][0]["container"]["env"]}
    assert env["OSS_ACCESS_KEY_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "oss", "key": "OSS_ACCESS_KEY_SECRET"}
    }
    assert arn not in json.dumps(migrated)


def test_render_takes_a_plan(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    assert cli.main(["plan", "--files", "1000", "--file-bytes", "14MB", "--json"]) == 0
    plan.write_text(capsys.readouterr().out)
    chosen = json.loads(plan.read_text())
    assert cli.main(["batch", "render", "--plan", str(plan)]) == 0
    doc = json.loads(capsys.readouterr().out)
    command = doc["jobDefinitions"][0]["containerProperties"]["command"]
    assert command[command.index("--fan-in") + 1] == str(chosen["fan_in"])
    assert doc["jobs"][0]["arrayProperties"]["size"] == -(-1000 // chosen["fan_in"])


def test_submit_from_the_command_line(tmp_path, batch_client, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(render(Options(files=4, final_fan_in=2))))
    endpoint = batch_client.meta.endpoint_url
    args = ["batch", "submit", str(path), "--endpoint-url", endpoint, "--region", "us-east-1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out] == [
        "process-data",
        "merge-data",
        "process-data-l1",
        "merge-data",
    ]


def test_evaluate_on_exit_becomes_an_expression_that_retries_when_batch_would():
    rules = [
        {"onExitCode": "137", "action": "EXIT"},  # the first matching rule decides...
        {"onExitCode": "1*", "action": "RETRY"},
        {"onReason": "CannotPull*", "action": "EXIT"},
    ]
    expression = retry_expression(rules)
    for code, message, retried in [
        ("137", "OOMKilled", False),  # ...so 137 ends the job though 1* would retry it
        ("12", "Error", True),
        ("3", "CannotPullContainerError", False),
        ("3", "Error", True),  # no rule matches: Batch retries
    ]:
        scope = {"lastRetry.exitCode": code, "lastRetry.message": message}
        assert evaluate_condition(expression, scope) is retried, (code, message)
    with pytest.raises(errors.ConfigError, match="only a trailing"):
        retry_expression([{"onExitCode": "1*3", "action": "RETRY"}])


def test_n_to_n_becomes_one_task_per_index_waiting_for_the_same_index(tmp_path):
    doc = render(Options(files=8, fan_in=2, final_fan_in=2))  # 8 -> 4 -> 2 -> result
    first, second = doc["jobs"][0], doc["jobs"][1]
    prepare = {**copy.deepcopy(first), "jobName": "prepare"}
    check = {**copy.deepcopy(first), "jobName": "check"}
    first["dependsOn"] = [{"jobId": "prepare", "type": "N_TO_N"}]
    check["dependsOn"] = [{"jobId": "process-data-l1", "type": "N_TO_N"}]  # the same size
    second["dependsOn"] = [{"jobId": "process-data-l1", "type": "N_TO_N"}]  # another size
    doc["jobs"] = [prepare, first, check, *doc["jobs"][1:]]
    migrated = yaml.safe_load(convert(doc).to_yaml())
    tasks = {t["name"]: t for t in migrated["spec"]["templates"][-1]["dag"]["tasks"]}
    # child i waits for child i of the job it names; that job is one task over its array
    assert [tasks[f"process-data-l1-{i}"]["dependencies"] for i in range(4)] == [["prepare"]] * 4
    assert [tasks[f"check-{i}"]["dependencies"] for i in range(4)] == [
        [f"process-data-l1-{i}"] for i in range(4)
    ]
    index = tasks["check-2"]["arguments"]["parameters"][-1]
    assert index == {"name": "index", "value": "2"}
    # N_TO_N on a job of another size cannot pair the children: it waits for all of them
    assert tasks["process-data-l2"]["dependencies"] == [f"process-data-l1-{i}" for i in range(4)]
    assert validate(migrated) == []


@pytest.mark.parametrize(
    "command, content, phrase",
    [
        (["batch", "validate"], "{}", "jobDefinitions: a list"),
        (["batch", "run-local"], '{"jobDefinitions": [5], "jobs": [{}]}', "not an object"),
        (
            ["migrate"],
            '{"jobDefinitions": [{"jobDefinitionName": "a", "type": "container"}], "jobs": []}',
            "no jobs",
        ),
        (
            ["migrate"],
            '[{"jobDefinitionName": "a"}, {"jobName": "j", "jobDefinition": "a"}]',
            "type None, not container",
        ),
        (["migrate"], "[1, 2]", "neither a job definition nor a job"),
        (["migrate"], "{not json", "neither JSON objects nor YAML"),
    ],
)
def test_bad_files_are_one_line_and_code_78(command, content, phrase, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code = cli.main([*command, str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (errors.EXIT_CONFIG, 1) and len(err) == 1 and phrase in err[0], (code, err)


def test_argo_run_local_refuses_a_manifest_of_the_wrong_shape_in_one_line(tmp_path, capsys):
    path = tmp_path / "wf.yaml"
    path.write_text("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec: 5\n")
    assert argo_main(["run-local", str(path)]) == errors.EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a manifest this expands" in err[0]


def test_names_batch_takes_become_names_argo_takes():
    doc = render(Options(files=9, final_fan_in=2))
    doc["jobDefinitions"][0]["jobDefinitionName"] = "proc_data"
    for job in doc["jobs"]:
        job["jobDefinition"] = (
            "proc_data" if job["jobDefinition"] == "process-data" else job["jobDefinition"]
        )
    doc["jobs"][0]["jobName"] = "1st_Level"
    doc["jobs"][1]["dependsOn"] = [{"jobId": "1st_Level"}]
    migrated = yaml.safe_load(convert(doc).to_yaml())
    assert validate(migrated) == []
    tasks = [t["name"] for t in migrated["spec"]["templates"][-1]["dag"]["tasks"]]
    assert tasks[0] == "job-1st-level" and "proc-data" in [
        t["name"] for t in migrated["spec"]["templates"]
    ]


def test_sequential_names_no_job_and_is_listed_not_dropped():
    doc = render(Options(files=9, final_fan_in=2))
    doc["jobs"][0]["dependsOn"] = [{"type": "SEQUENTIAL"}]
    assert model.problems(doc) == []
    assert [len(w) for w in batch_local.expand(doc)][:5] == [1] * 5  # its children one by one
    with pytest.raises(errors.ConfigError, match="SEQUENTIAL"):
        convert(doc)
