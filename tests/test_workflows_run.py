"""The manifests do what they say: their pods, expanded the way Argo expands them and run with
their exact argv, give `workload run`'s result bit for bit; and so does the seed's own YAML."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from workload import errors, run_local
from workload.argo.build import FORMS, TEMPLATE_NAME, Options
from workload.argo.expand import SecretRef, expand
from workload.argo.expr import substitute
from workload.argo.local import IMAGE_SCRIPTS, PodFailed, image_workdir, resolve_env, run
from workload.generate import generate
from workload.settings import Settings
from workload.storage import open_store
from workload.testing.pods import REPO, run_tree
from workload.testing.pods import result_files as _result
from workload.verify import verify

ROWS, KEYS, SEED = 300, 2000, 7  # small files: these tests are about the manifests
IMAGE = Options().image
SEED_YAML = Path(__file__).resolve().parent / "fixtures" / "seed-004-argo.yaml"
BUCKET = "workflows-run"
RUN = "run-1"  # {{workflow.name}}: the run's folder for its levels above l1 and its result


# -- fixtures and helpers ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def image() -> Iterator[Path]:
    """The image's WORKDIR (/app), as `run-local` lays it out."""
    with image_workdir() as app:
        yield app


def test_run_local_lays_out_the_images_workdir_as_the_dockerfile_does(image):
    copied = {p.name: p.read_text() for p in image.iterdir()}
    assert copied == {name: (REPO / "image" / name).read_text() for name in IMAGE_SCRIPTS}
    assert "COPY image/process.py image/merge.py ./" in (REPO / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The result files' bytes for the same input, once per file count: from `workload run` for
    the seed's 128 files, else from the same pods' functions in this process (run_tree, faster).
    The result is the same for every tree shape and op, so one run serves every shape."""
    done: dict[int, tuple[bytes, bytes]] = {}

    def result(files: int) -> tuple[bytes, bytes]:
        if files not in done:
            root = str(tmp_path_factory.mktemp(f"reference-{files}"))
            if files == 128:
                settings = Settings.load(root=root)
                report = run_local.run(settings, files=files, rows=ROWS, keys=KEYS, seed=SEED)
                assert report["verified"]
            else:
                _inputs(root, files)
                run_tree(root)
                assert verify(open_store(root)) == []
            done[files] = _result(root)
        return done[files]

    return result


def _inputs(root: str, files: int) -> None:
    generate(open_store(root), files, ROWS, KEYS, SEED)


def _check(root: str, files: int, reference, run: str = RUN) -> None:
    assert verify(open_store(root, run=run)) == []
    assert _result(root, run) == reference(files)


def _golden(form: str) -> dict:
    return yaml.safe_load((REPO / "manifests" / f"{form}.yaml").read_text())


def _expand(form: str, options: Options | None = None, **parameters: str):
    """A form's pods: the golden manifests, or rendered from `options`."""

    def manifest(f: str) -> dict:
        return _golden(f) if options is None else FORMS[f](options).to_dict()

    if form == "steps":  # as `argo submit workflow.yaml` runs it: through the template ref
        ref = {TEMPLATE_NAME: manifest("steps")}
        return expand(manifest("workflow"), parameters, ref, name=RUN)
    return expand(manifest(form), parameters, name=RUN)


def _argvs(waves) -> list[list[list[str]]]:
    return [[pod.argv for pod in wave] for wave in waves]


def _seed() -> dict:
    """The seed's Argo YAML as published, with only the image replaced by ours."""
    manifest = yaml.safe_load(SEED_YAML.read_text())
    for template in manifest["spec"]["templates"]:
        if "container" in template:
            template["container"]["image"] = IMAGE
    return manifest


# -- what the manifests expand to --------------------------------------------------------------
def test_steps_expand_to_the_seed_tree():
    waves = _expand("steps")
    assert [len(w) for w in waves] == [64, 32, 1]
    options = ["--root", "/mnt/vol", "--op", "merge", "--fan-in", "2", "--run", RUN]
    metrics = ["--metrics-file", "/tmp/metrics.json"]
    rest = [*options, *metrics]
    assert _argvs(waves)[:2] == [
        [
            ["python3", "process.py", str(i), str(level), "--level-pods", str(n), *rest]
            for i in range(n)
        ]
        for level, n in ((1, 64), (2, 32))
    ]
    summary = ["--summary-file", "/tmp/summary.json"]
    final = ["python3", "merge.py", "0", "32", "--level", "3", *options, *metrics, *summary]
    assert _argvs(waves)[2] == [final]
    pod = waves[0][0]
    assert (pod.image, pod.working_dir, pod.mounts) == (IMAGE, "/app", {"/mnt/vol": "workdir"})
    assert pod.env["OSS_ENDPOINT"] == ""
    assert pod.env["OSS_ACCESS_KEY_ID"] == SecretRef("oss-credentials", "OSS_ACCESS_KEY_ID", True)

    def resources(p) -> dict:  # main's, in the podSpecPatch that also sets wait and init
        containers = json.loads(p.pod_spec_patch)["containers"]
        return next(c["resources"] for c in containers if c["name"] == "main")

    assert resources(pod)["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert resources(waves[2][0])["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert (pod.outputs, waves[2][0].outputs) == (
        {"metrics": "/tmp/metrics.json"},
        {"summary": "/tmp/summary.json"},
    )
    assert _expand("standalone") == waves  # the self-contained Workflow runs the very same pods


def test_dag_tasks_wait_only_for_their_producers():
    main = next(t for t in _golden("dag")["spec"]["templates"] if t["name"] == "main")
    tasks = {t["name"]: t.get("dependencies") for t in main["dag"]["tasks"]}
    assert tasks["l2-5"] == ["l1-10", "l1-11"]
    assert all(tasks[f"l1-{i}"] is None for i in range(64))
    assert all(tasks[f"l2-{i}"] == [f"l1-{2 * i}", f"l1-{2 * i + 1}"] for i in range(32))
    assert tasks["merge-data"] == [f"l2-{i}" for i in range(32)]
    assert len(tasks) == 64 + 32 + 1
    # Layered by dependencies, the DAG runs exactly the steps form's pods, level by level.
    assert _argvs(_expand("dag")) == _argvs(_expand("steps"))


# -- running them ------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["steps", "dag"])
def test_128_files_give_workload_runs_result(form, tmp_path, image, reference):
    root = str(tmp_path / "vol")
    _inputs(root, 128)
    waves = _expand(form, root=root)
    results = run(waves, image, in_process=True)
    _check(root, 128, reference)
    # The output parameters Argo collects from each pod's /tmp: its metrics and the summary.
    level1 = [json.loads(r.outputs["metrics"]) for r in results[0]]
    assert sum(m["rows_out"] for m in level1) == 128 * ROWS
    summary = json.loads(results[-1][0].outputs["summary"])
    assert (summary["rows"], summary["files"]) == (128 * ROWS, 128)


@pytest.mark.parametrize("op", ["merge", "aggregate"])
@pytest.mark.parametrize("form", ["steps", "dag"])
@pytest.mark.parametrize("files,fan_in,final_fan_in", [(9, 2, 2), (23, 3, 2)])
def test_odd_shapes(files, fan_in, final_fan_in, form, op, tmp_path, image, reference):
    options = Options(files=files, fan_in=fan_in, final_fan_in=final_fan_in)
    plan = options.plan  # 9 -> 5 -> 3 -> 2 -> result; 23 -> 8 -> 3 -> 1 -> result
    root = str(tmp_path / "vol")
    _inputs(root, files)
    waves = _expand(form, options, root=root, op=op)
    pods = [plan.pods(level) for level in range(1, plan.levels + 1)]
    assert [len(w) for w in waves] == [*pods, 1]
    assert waves[-1][0].argv[2:6] == ["0", str(plan.final_count), "--level", str(plan.final_level)]
    run(waves, image, in_process=True)
    _check(root, files, reference)


def test_s3_through_the_image_scripts(tmp_path, image, reference, monkeypatch):
    """Subprocesses with the image's scripts, the root as a parameter, credentials in the env."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret-s3",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        root = f"s3://{BUCKET}/steps"
        _inputs(root, 5)
        waves = _expand("steps", Options(files=5, fan_in=2, final_fan_in=2), root=root)
        assert [len(w) for w in waves] == [3, 2, 1]  # 5 -> 3 -> 2 -> result
        results = run(waves, image, env=env)
        _check(root, 5, reference)
        assert all("test-secret-s3" not in r.stdout + r.stderr for w in results for r in w)
    finally:
        server.stop()


@pytest.mark.parametrize("form", ["standalone", "dag", "workflow"])
def test_run_local_runs_a_manifest_file_as_the_cluster_would(form, tmp_path, reference, capsys):
    """`python -m workload.argo run-local`: the rendered file (a Workflow, a WorkflowTemplate,
    a Workflow that references one), its PVC mapped by claim name, the Secret from a Secret
    manifest, `-p` as `argo submit -p`."""
    from workload.argo.__main__ import main

    root = tmp_path / "vol"
    _inputs(str(root), 9)
    files = {}
    for name in {form, "steps"}:
        assert main(["render", "--files", "9", "--final-fan-in", "2", "--form", name]) == 0
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(capsys.readouterr().out)
    manifest = files[form]
    secret = tmp_path / "secret.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: oss-credentials}\n"
        "stringData: {OSS_ACCESS_KEY_ID: id, OSS_ACCESS_KEY_SECRET: not-shown}\n"
    )
    args = ["run-local", str(manifest), "--volume", f"pvc-oss={root}", "--secret", str(secret)]
    if form == "dag":  # the same command as `workload argo run-local`
        from workload import cli

        def main(argv):
            return cli.main(["argo", *argv])

    args += ["--template", str(files["steps"])] if form == "workflow" else []
    assert main([*args, "-p", "op=aggregate", "--parallelism", "3", "--name", RUN]) == 0
    out = capsys.readouterr().out
    # 9 -> 5 -> 3 -> 2 -> 1, then the exit handler
    assert out.splitlines()[-1] == "12 pods in 5 waves, all succeeded"
    assert "not-shown" not in out
    _check(str(root), 9, reference)
    outcome = json.loads((root / RUN / "outcome.json").read_text())
    assert outcome == {"run": RUN, "status": "Succeeded", "result": True, "removed": []}


def test_run_local_refuses_what_it_cannot_map_by_name(tmp_path, capsys):
    from workload.argo.__main__ import main

    manifest = tmp_path / "steps.yaml"
    assert main(["render", "--files", "9", "--form", "steps"]) == 0
    manifest.write_text(capsys.readouterr().out)
    cases = [
        ([], "pass --volume pvc-oss=PATH"),
        (["--volume", "other=/x"], "pass --volume pvc-oss=PATH"),
        (["--volume", "pvc-oss"], "--volume expects CLAIM=PATH, got 'pvc-oss'"),
        (["--volume", f"pvc-oss={tmp_path}", "-p", "nope=1"], "'nope'"),
        (["--volume", f"pvc-oss={tmp_path}", "-p", "op=sort"], "op='sort'"),
    ]
    for extra, phrase in cases:
        code = main(["run-local", str(manifest), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code in (errors.EXIT_CONFIG, errors.EXIT_USAGE), (extra, code)
        assert len(err) == 1 and phrase in err[0], (extra, err)


def test_steps_form_without_process_levels_reads_every_file():
    options = Options(files=9)  # 9 <= 32 files: the final pod alone reads l1/0..8
    assert _argvs(_expand("dag", options))[0][0][2:6] == ["0", "9", "--level", "1"]
    assert _argvs(_expand("steps", options))[0][0][2:6] == ["0", "9", "--level", "1"]


# -- the seed's own YAML -----------------------------------------------------------------------
def test_seed_yaml_gives_workload_runs_result(tmp_path, image, reference):
    """The published workflow, only the image replaced: `python3 process.py {{item}} 1`, then
    `... {{item}} 2`, then `python3 merge.py 0 {{=asInt(workflow.parameters.numbers)/2}}`, run
    as real processes with the PVC at /mnt/vol standing in as the package's default root."""
    seed = _seed()
    waves = expand(seed, {"numbers": "64"})
    assert _argvs(waves) == [
        [["python3", "process.py", str(i), "1"] for i in range(64)],
        [["python3", "process.py", str(i), "2"] for i in range(32)],
        [["python3", "merge.py", "0", "32"]],
    ]
    pods = [pod for wave in waves for pod in wave]
    assert {(p.image, p.working_dir, tuple(p.mounts.items())) for p in pods} == {
        (IMAGE, None, (("/mnt/vol", "workdir"),))
    }
    root = str(tmp_path / "vol")
    _inputs(root, 128)
    run(waves, image, volume=root)
    _check(root, 128, reference, run="")  # the seed names no run: l2, l3, result/ in the root


def test_seed_fails_odd_numbers_our_steps_do_not(tmp_path, image, reference):
    seed = _seed()
    # Argo divides in floating point: 65 / 2 is "32.5", which withSequence cannot count...
    with pytest.raises(ValueError, match=r"withSequence count '32\.5' of 'process-data-l2'"):
        expand(seed, {"numbers": "65"})
    # ...and which the final pod, created on its own, rejects as a bad argument.
    main = next(t for t in seed["spec"]["templates"] if t["name"] == "main")
    main["steps"] = main["steps"][2:]
    [[merge]] = expand(seed, {"numbers": "65"})
    assert merge.argv == ["python3", "merge.py", "0", "32.5"]
    with pytest.raises(PodFailed) as failed:
        run([[merge]], image, volume=str(tmp_path))
    assert failed.value.returncode == errors.EXIT_USAGE == 2
    assert "count must be an integer, got '32.5'" in failed.value.stderr
    # Our steps form counts with an integer ceiling: 130 files, -p numbers=65.
    root = str(tmp_path / "vol")
    _inputs(root, 130)
    waves = _expand("steps", numbers="65", root=root)
    assert [len(w) for w in waves] == [65, 33, 1]
    assert waves[2][0].argv[2:6] == ["0", "33", "--level", "3"]
    run(waves, image, in_process=True)
    _check(root, 130, reference)


# -- what the expander refuses -----------------------------------------------------------------
def _step(manifest: dict) -> dict:
    main = next(t for t in manifest["spec"]["templates"] if t["name"] == "main")
    return main["steps"][0][0]


def _set_arg(value: str):
    return lambda m: _step(m)["arguments"]["parameters"][1].update(value=value)


def _when(m):
    _step(m)["when"] = "{{item}} < 2"


def _with_param(m):
    _step(m)["withParam"] = "[1, 2]"


def _format(m):
    _step(m)["withSequence"]["format"] = "%02d"


def _template_ref(m):
    _step(m)["templateRef"] = {"name": "other", "template": "main"}


def _script(m):
    m["spec"]["templates"][0]["script"] = {"image": "python", "source": "print(1)"}


def _hooks(m):
    m["spec"]["hooks"] = {"exit": {"template": "cleanup"}}


@pytest.mark.parametrize(
    "change,message",
    [
        pytest.param(_when, "unsupported field.* when", id="when"),
        pytest.param(_with_param, "unsupported field.* withParam", id="withParam"),
        pytest.param(_format, "unsupported field.* format", id="sequence-format"),
        pytest.param(_template_ref, "unsupported field.* templateRef", id="templateRef"),
        pytest.param(_script, "unsupported field.* script", id="script"),
        pytest.param(_hooks, "unsupported field.* hooks", id="hooks"),
        pytest.param(_set_arg("{{=max(1, 2)}}"), "construct 'max", id="function"),
        pytest.param(_set_arg("{{=sprig.add(1, 2)}}"), "construct 'sprig", id="sprig"),
        pytest.param(_set_arg("{{=2 ^ 3}}"), r"construct '2 \^ 3'", id="operator"),
        pytest.param(_set_arg("{{=1 < 2}}"), "construct '1 < 2'", id="comparison"),
        pytest.param(
            _set_arg("{{workflow.parameters.nope}}"), "{{workflow.parameters.nope}}", id="param"
        ),
        pytest.param(
            _set_arg("{{=asInt(workflow.parameters.nope)}}"),
            "'workflow.parameters.nope'",
            id="expr-param",
        ),
        pytest.param(_set_arg("{{pod.name}}"), "unknown variable {{pod.name}}", id="variable"),
    ],
)
def test_refuses_what_it_does_not_understand(change, message):
    manifest = copy.deepcopy(_golden("steps"))
    change(manifest)
    with pytest.raises(ValueError, match=message):
        expand(manifest)


def test_refuses_undeclared_parameters_and_conditional_depends():
    with pytest.raises(ValueError, match=r"\['numbrs'\] are not declared"):
        _expand("steps", numbrs="65")
    dag = _golden("dag")
    final = next(t for t in dag["spec"]["templates"] if t["name"] == "main")["dag"]["tasks"][-1]
    final["depends"] = " || ".join(final.pop("dependencies"))
    with pytest.raises(ValueError, match="unsupported depends"):
        expand(dag)
    final["depends"] = " && ".join(f"{t}.Succeeded" for t in final["depends"].split(" || "))
    assert _argvs(expand(dag, name=RUN)) == _argvs(_expand("dag"))


def test_nested_templates_expand_in_place_and_recursion_is_refused():
    manifest = _golden("steps")
    main = next(t for t in manifest["spec"]["templates"] if t["name"] == "main")
    main["name"] = "tree"
    manifest["spec"]["templates"].append(
        {"name": "main", "steps": [[{"name": "tree", "template": "tree"}]]}
    )
    assert _argvs(expand(manifest, name=RUN)) == _argvs(_expand("steps"))
    main["steps"].append([{"name": "again", "template": "main"}])
    with pytest.raises(ValueError, match="recursive"):
        expand(manifest)


@pytest.mark.parametrize(
    "expression,expected",
    [
        ("asInt(workflow.parameters.n)/2", "32.5"),  # `/` is float division
        ("asInt('64')/2", "32"),  # a float 32.0 renders as "32"
        ("int((asInt(workflow.parameters.n) + 2 - 1) / 2)", "33"),
        ("int(-7 / 2)", "-3"),  # int() truncates
        ("-7 % 3", "-1"),  # Go's remainder
        ("2 ** 3", "8"),
        ("asInt(workflow.parameters.n) ** 0.5 * 2", "16.1245154965971"),
        ("1 / 3", "0.3333333333333333"),
        ("1e21 * 10", "1e+22"),
        ("asFloat('2.5') * 2", "5"),
    ],
)
def test_expressions_follow_argo(expression, expected):
    assert substitute("{{=" + expression + "}}", {"workflow.parameters.n": "65"}) == expected


def test_secrets_resolve_like_the_kubelet():
    pod = _expand("steps")[0][0]
    assert "OSS_ACCESS_KEY_ID" not in resolve_env(pod, {})  # optional: left out
    secrets = {("oss-credentials", "OSS_ACCESS_KEY_ID"): "id"}
    assert resolve_env(pod, secrets)["OSS_ACCESS_KEY_ID"] == "id"
    pod.env["OSS_ACCESS_KEY_SECRET"] = SecretRef("oss-credentials", "OSS_ACCESS_KEY_SECRET")
    with pytest.raises(ValueError, match="secret oss-credentials/OSS_ACCESS_KEY_SECRET"):
        resolve_env(pod, secrets)


# -- at scale: the planner's manifests ---------------------------------------------------------
def test_a_hundred_thousand_planned_shards_render_valid_manifests_within_the_status_limit():
    from workload import planner
    from workload.argo import status
    from workload.argo.build import check_size
    from workload.argo.validate import validate
    from workload.layout import dag_chunk

    plan = planner.choose(planner.Request(files=100_000, file_bytes=14 * 10**6, storage="oss"))
    options = Options(files=100_000, fan_in=plan.fan_in, metrics_output=plan.metrics_output)
    pods = [options.plan.pods(level) for level in range(1, options.plan.levels + 1)] + [1]
    for form in ("steps", "dag"):
        manifest = FORMS[form](options)
        doc = manifest.to_dict()
        assert validate(doc) == [], form
        check_size(manifest, options, form)  # raises past the limit
        spec = len(json.dumps(doc, separators=(",", ":")))
        size = status.size(pods, fan_in=plan.fan_in, form=form, spec_bytes=spec, outputs=False)
        assert size.total_bytes < status.MAX_WORKFLOW_SIZE and size.nodes > 2 * sum(pods)
    main = next(t for t in FORMS["dag"](options).to_dict()["spec"]["templates"] if "dag" in t)
    assert len(main["dag"]["tasks"]) <= 200 and dag_chunk(options.plan) > 1


def test_render_takes_the_plans_read_budget_to_every_pod(tmp_path, capsys):
    from workload import cli
    from workload.argo.__main__ import main

    plan_file = tmp_path / "plan.json"
    args = ["plan", "--files", "100000", "--file-bytes", "14MB", "--storage", "oss", "--json"]
    assert cli.main(args) == 0
    plan_file.write_text(capsys.readouterr().out)
    budget = json.loads(plan_file.read_text())["read_budget"]
    assert main(["render", "--plan", str(plan_file), "--form", "steps"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    pods = [t for t in doc["spec"]["templates"] if "container" in t]
    for template in pods:
        env = {e["name"]: e.get("value") for e in template["container"]["env"]}
        assert env["WORKLOAD_READ_BUDGET"] == str(budget), template["name"]
    [[first, *_], *_] = expand(
        {"kind": "WorkflowTemplate", "spec": doc["spec"]}, {"root": "s3://b/x"}
    )
    assert first.env["WORKLOAD_READ_BUDGET"] == str(budget)


def test_a_thousand_planned_files_run_pod_by_pod_give_workload_runs_result(
    tmp_path, image, reference
):
    """The 100,000-shard path scaled down: 1,000 files at fan-in 2 are 970 level pods, so the
    DAG form runs chunked tasks (withSequence per task) past its 200 tasks. (The steps form's
    pods are the same at any width: the 128-file tests run them.)"""
    from workload.layout import dag_chunk

    form = "dag"
    options = Options(files=1000, fan_in=2, metrics_output=False)
    assert dag_chunk(options.plan) > 1
    root = str(tmp_path / "vol")
    _inputs(root, 1000)
    waves = _expand(form, options, root=root)
    assert sum(len(w) for w in waves) == sum(options.plan.pods(lv) for lv in range(1, 6)) + 1
    run(waves, image, in_process=True)
    _check(root, 1000, reference)


def test_a_workflow_wider_than_its_input_stops_at_its_first_level(tmp_path, image):
    """`-p numbers` other than the input's width would change the tree: every level-1 pod
    refuses at once (exit 2, not retried), naming the width and the input."""
    root = str(tmp_path / "vol")
    _inputs(root, 128)
    waves = _expand("steps", root=root, numbers="5000")
    assert len(waves[0]) == 5000
    with pytest.raises(PodFailed) as failed:
        run([waves[0][:1]], image, in_process=True)
    assert failed.value.returncode == errors.EXIT_USAGE
    assert "--level-pods 5000" in failed.value.stderr and "128 input files" in failed.value.stderr


def test_two_concurrent_runs_with_different_ops_on_one_root_both_verify(tmp_path, reference):
    """Each run writes its levels above l1 and its result under its own name ({{workflow.name}}
    as the pods' --run), so two runs on one volume never share a file; the exit handler records
    each outcome, and with --clean removes a succeeded run's levels."""
    from concurrent.futures import ThreadPoolExecutor

    from workload.argo.local import run_manifest

    root = tmp_path / "vol"
    _inputs(str(root), 9)
    manifests = {}
    for clean in (False, True):
        options = Options(files=9, fan_in=2, final_fan_in=2, clean=clean)
        manifests[clean] = tmp_path / f"clean-{clean}.yaml"
        manifests[clean].write_text(FORMS["standalone"](options).to_yaml())
    runs = {"merge-run": ("merge", False), "aggregate-run": ("aggregate", True)}

    def one(name: str):
        op, clean = runs[name]
        return run_manifest(
            manifests[clean],
            parameters={"op": op},
            volumes={"pvc-oss": str(root)},
            secrets=[],
            templates=[],
            name=name,
        )

    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(one, runs))
    assert [name for name, _ in done] == list(runs)
    for name, (op, clean) in runs.items():
        _check(str(root), 9, reference, run=name)
        summary = json.loads((root / name / "result" / "summary.json").read_text())
        assert summary["op"] == op
        outcome = json.loads((root / name / "outcome.json").read_text())
        removed = ["l2", "l3", "l4"] if clean else []
        assert outcome == {"run": name, "status": "Succeeded", "result": True, "removed": removed}
        levels = sorted(p.name for p in (root / name).iterdir() if p.name.startswith("l"))
        assert levels == ([] if clean else ["l2", "l3", "l4"])
    assert sorted(p.name for p in root.iterdir()) == ["aggregate-run", "l1", "merge-run"]


def test_a_failed_run_records_its_outcome_and_keeps_its_levels(tmp_path):
    from workload.argo.local import run_manifest

    root = tmp_path / "vol"
    _inputs(str(root), 9)
    (root / "l1" / "3.parquet").write_bytes(b"not parquet")  # a level-1 pod fails for good
    manifest = tmp_path / "wf.yaml"
    options = Options(files=9, fan_in=2, final_fan_in=2, clean=True)
    manifest.write_text(FORMS["standalone"](options).to_yaml())
    with pytest.raises(PodFailed) as failed:
        run_manifest(
            manifest,
            parameters={},
            volumes={"pvc-oss": str(root)},
            secrets=[],
            templates=[],
            name=RUN,
        )
    assert failed.value.returncode == errors.EXIT_DATA
    outcome = json.loads((root / RUN / "outcome.json").read_text())
    assert outcome == {"run": RUN, "status": "Failed", "result": False, "removed": []}
