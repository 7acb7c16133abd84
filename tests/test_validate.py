"""The offline Argo manifest validator: peer manifests, and one mutation per rule it enforces."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from workload.argo.validate import schema_for, validate, validate_file

REPO = Path(__file__).resolve().parents[1]

ARGO_EXAMPLES = [
    "dag-diamond",
    "loops-sequence",
    "map-reduce",
    "recursive-for-loop",
    "retry-backoff",
]


def reference(name: str) -> Path:
    return Path(__file__).resolve().parent / "fixtures" / "reference" / f"{name}.yaml"


def load(name: str) -> dict:
    return yaml.safe_load(reference(name).read_text(encoding="utf-8"))


def test_schemas_and_their_bare_metadata():
    for kind in ("Workflow", "WorkflowTemplate"):
        schema = schema_for(kind)
        assert schema["properties"]["metadata"] == {"type": "object"}
        assert schema["required"] == ["metadata", "spec"]
    with pytest.raises(ValueError, match="CronWorkflow"):
        schema_for("CronWorkflow")


@pytest.mark.parametrize("name", ARGO_EXAMPLES)
def test_argo_examples_are_valid(name):
    assert validate_file(reference(f"argo-{name}")) == []


def test_alibaba_aggregation_template_passes_an_int_where_a_string_is_required():
    problems = validate_file(reference("alibaba-aggregation-template"))
    # level_number is given as `value: 1` ... `value: 5` in the five process-data steps.
    assert problems == [
        f"spec.templates[0].steps[{i}][0].arguments.parameters[1].value: "
        f"expected string, got integer {i + 1}"
        for i in range(5)
    ]


def test_other_alibaba_manifests():
    # The retry variant has the same bug: `interval: 1` and `interval: 2` as YAML ints.
    assert validate_file(reference("alibaba-aggregation-parallel")) == [
        f"spec.templates[1].steps[{i}][0].arguments.parameters[4].value: "
        f"expected string, got integer {i + 1}"
        for i in range(2)
    ]
    assert validate_file(reference("alibaba-dynamic-dag-map-reduce")) == []
    # A Secret, a PersistentVolume and a PersistentVolumeClaim: no Argo document to check.
    assert validate_file(reference("alibaba-oss-pvpvc")) == []
    secret = next(yaml.safe_load_all(reference("alibaba-oss-pvpvc").read_text(encoding="utf-8")))
    assert validate(secret)[-1].startswith("kind: 'Secret' cannot be validated")


def test_unknown_field_is_rejected():
    doc = load("argo-retry-backoff")
    doc["spec"]["templates"][0]["retryStategy"] = doc["spec"]["templates"][0].pop("retryStrategy")
    assert validate(doc) == ["spec.templates[0].retryStategy: unknown field"]
    doc = load("argo-retry-backoff")
    doc["metadata"]["lables"] = {"a": "b"}
    doc["spec"]["templates"][0]["container"]["imagePullPolice"] = "Always"
    assert validate(doc) == [
        "metadata.lables: unknown field",
        "spec.templates[0].container.imagePullPolice: unknown field",
    ]


def test_wrong_types_are_rejected():
    doc = load("argo-dag-diamond")
    doc["spec"]["parallelism"] = "x"
    doc["spec"]["templates"][0]["dag"]["failFast"] = "yes"
    doc["metadata"]["labels"] = {"team": 7}
    assert sorted(validate(doc)) == [
        "metadata.labels.team: expected string, got integer 7",
        "spec.parallelism: expected integer, got string 'x'",
        "spec.templates[0].dag.failFast: expected boolean, got string 'yes'",
    ]
    doc = load("argo-dag-diamond")
    doc["spec"]["parallelism"] = True  # a bool is not an integer
    doc["spec"]["templates"][1]["container"]["image"] = None
    assert sorted(validate(doc)) == [
        "spec.parallelism: expected integer, got boolean True",
        "spec.templates[1].container.image: null is not allowed",
    ]


def test_int_or_string_fields():
    # activeDeadlineSeconds, retryStrategy.limit and resource quantities are int-or-string.
    doc = load("argo-retry-backoff")
    template = doc["spec"]["templates"][0]
    for seconds, limit, cpu in (
        (300, 10, "500m"),
        ("300", "10", 1),
        ("{{=5*60}}", "{{=2*5}}", "1.5"),
    ):
        template["activeDeadlineSeconds"] = seconds
        template["retryStrategy"]["limit"] = limit
        template["container"]["resources"] = {"requests": {"cpu": cpu, "memory": "64Mi"}}
        assert validate(doc) == []
    template["activeDeadlineSeconds"] = [300]
    template["retryStrategy"]["limit"] = True
    template["container"]["resources"] = {"requests": {"cpu": 0.5}, "limits": {"cpu": "lots"}}
    assert sorted(validate(doc)) == [
        "spec.templates[0].activeDeadlineSeconds: expected integer or string, got array [300]",
        "spec.templates[0].container.resources.limits.cpu: 'lots' does not match pattern "
        "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?"
        "(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
        "spec.templates[0].container.resources.requests.cpu: expected integer or string, "
        "got number 0.5",
        "spec.templates[0].retryStrategy.limit: expected integer or string, got boolean True",
    ]


def test_template_references():
    doc = load("argo-dag-diamond")
    doc["spec"]["templates"][0]["dag"]["tasks"][3]["template"] = "nope"
    doc["spec"]["entrypoint"] = "missing"
    assert validate(doc) == [
        "spec.entrypoint: template 'missing' is not defined",
        "spec.templates[0].dag.tasks[3].template: template 'nope' is not defined in this manifest",
    ]
    doc = load("argo-dag-diamond")
    doc["spec"]["templates"][0]["dag"]["tasks"][3]["templateRef"] = {"name": "lib", "template": "x"}
    del doc["spec"]["templates"][0]["dag"]["tasks"][3]["template"]
    assert validate(doc) == []  # templateRef targets live elsewhere: not followed
    doc["spec"]["templates"].append(copy.deepcopy(doc["spec"]["templates"][1]))
    assert validate(doc) == ["spec.templates[2].name: 'echo' is not unique"]


def test_undeclared_parameters():
    doc = load("argo-dag-diamond")
    doc["spec"]["templates"][1]["container"]["args"] = [
        "{{inputs.parameters.nope}}",
        "{{=asInt(inputs.parameters.message) + asInt(inputs.parameters['gone'])}}",
        "{{workflow.parameters.ghost}} {{steps.x.outputs.parameters.fine}}",
    ]
    assert validate(doc) == [
        "spec.templates[1].container.args[2]: {{workflow.parameters.ghost}} is not declared in "
        "spec.arguments.parameters",
        "spec.templates[1].container.args[0]: {{inputs.parameters.nope}} is not declared in the "
        "inputs.parameters of template 'echo'",
        "spec.templates[1].container.args[1]: {{inputs.parameters.gone}} is not declared in the "
        "inputs.parameters of template 'echo'",
    ]
    doc = load("argo-dag-diamond")
    doc["spec"]["workflowTemplateRef"] = {"name": "elsewhere"}
    del doc["spec"]["templates"], doc["spec"]["entrypoint"]
    doc["spec"]["arguments"] = {"parameters": [{"name": "x", "value": "{{workflow.parameters.y}}"}]}
    assert validate(doc) == []  # the referenced WorkflowTemplate may declare it


def test_arguments_must_supply_inputs():
    doc = load("argo-dag-diamond")
    del doc["spec"]["templates"][0]["dag"]["tasks"][1]["arguments"]
    doc["spec"]["templates"][0]["dag"]["tasks"][2]["arguments"]["parameters"][0].pop("value")
    assert validate(doc) == [
        "spec.templates[0].dag.tasks[1].arguments: echo.inputs.parameters.message not supplied",
        "spec.templates[0].dag.tasks[2].arguments.parameters[0]: value or valueFrom is required",
    ]


def test_with_sequence_needs_count_xor_end():
    doc = load("argo-loops-sequence")
    doc["spec"]["templates"][0]["steps"][0][0]["withSequence"]["end"] = "9"
    doc["spec"]["templates"][0]["steps"][0][1]["withSequence"] = {"start": "1"}
    assert validate(doc) == [
        "spec.templates[0].steps[0][0].withSequence: needs exactly one of count or end",
        "spec.templates[0].steps[0][1].withSequence: needs exactly one of count or end",
    ]


def test_dag_dependencies():
    doc = load("argo-dag-diamond")
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    tasks[3]["depends"] = "A && ghost"
    assert validate(doc) == [
        "spec.templates[0].dag.tasks[3].depends: task 'ghost' is not defined in this dag"
    ]
    tasks[3]["depends"] = "(B.Succeeded || C.Failed) && !A.Errored"
    assert validate(doc) == []
    tasks[3]["depends"] = "B.Succeded & C"
    assert validate(doc) == [
        "spec.templates[0].dag.tasks[3].depends: cannot parse '&' in 'B.Succeded & C'",
        "spec.templates[0].dag.tasks[3].depends: unknown result 'B.Succeded' (use Succeeded, "
        "Failed, Errored, Skipped, Omitted, Daemoned, AnySucceeded, AllFailed)",
    ]
    tasks[3]["depends"] = "B && C"
    tasks[0]["depends"] = "D"
    assert validate(doc)[-1].startswith("spec.templates[0].dag: dependency cycle")
    doc = load("argo-dag-diamond")
    doc["spec"]["templates"][0]["dag"]["tasks"][1]["name"] = "C"
    doc["spec"]["templates"][0]["dag"]["tasks"][3]["dependencies"] = ["B"]
    problems = validate(doc)
    assert "spec.templates[0].dag.tasks[2].name: 'C' is not unique in this template" in problems
    assert (
        "spec.templates[0].dag.tasks[3].dependencies[0]: task 'B' is not defined in this dag"
        in problems
    )


def test_documents_and_files(tmp_path):
    assert validate([]) == ["document: expected object, got array"]
    doc = load("argo-retry-backoff")
    doc["apiVersion"] = "argoproj.io/v1"
    del doc["metadata"]["generateName"]
    assert validate(doc) == [
        "apiVersion: expected 'argoproj.io/v1alpha1', got 'argoproj.io/v1'",
        "metadata: name or generateName is required",
    ]
    good, bad = load("argo-retry-backoff"), load("argo-retry-backoff")
    bad["spec"]["templates"][0]["container"]["image"] = 3
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([good, bad]), encoding="utf-8")
    assert validate_file(path) == [
        "doc 2: spec.templates[0].container.image: expected string, got integer 3"
    ]
