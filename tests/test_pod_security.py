"""argo/security.py's "restricted" rules, argo/pod.py's pods, and the golden manifests' pods
passing "restricted" with Argo's default controller config."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from workload.argo.pod import apply_pod_spec_patch, pod_spec
from workload.argo.security import RULES, check, restricted
from workload.argo.validate import pod_security, validate_file

pytestmark = pytest.mark.unit

MANIFESTS = sorted((Path(__file__).resolve().parent.parent / "manifests").glob("*.yaml"))
HARDENED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
COMPLIANT = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
        "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}],
    },
    "initContainers": [{"name": "init", "image": "x", "securityContext": HARDENED}],
    "containers": [
        {"name": "wait", "image": "x", "securityContext": HARDENED},
        {
            "name": "main",
            "image": "x",
            "ports": [{"containerPort": 80}],
            "securityContext": {
                **HARDENED,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                "seLinuxOptions": {"type": "container_t", "level": "s0:c1"},
                "appArmorProfile": {"type": "RuntimeDefault"},
                "procMount": "Default",
            },
        },
    ],
    "volumes": [
        {"name": "a", "emptyDir": {}},
        {"name": "b", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "c", "secret": {"secretName": "s"}},
    ],
}


def _main(pod: dict) -> dict:
    return pod["containers"][1]


def _set(where, **fields):
    """A change to the compliant pod: `where` picks the dict that gets `fields`."""

    def change(pod: dict) -> None:
        where(pod).update(fields)

    return change


def _pod_sc(pod):
    return pod["securityContext"]


def _main_sc(pod):
    return _main(pod)["securityContext"]


def _wait_sc(pod):
    return pod["containers"][0]["securityContext"]


def _drop(key):
    def change(pod: dict) -> None:
        del _wait_sc(pod)[key]

    return change


def _drop_pod(key):
    def change(pod: dict) -> None:
        del _pod_sc(pod)[key]

    return change


def _volume(**source):
    def change(pod: dict) -> None:
        pod["volumes"].append({"name": "bad", **source})

    return change


CASES = {
    "HostProcess": (
        _set(_pod_sc, windowsOptions={"hostProcess": True}),
        "pod: securityContext.windowsOptions.hostProcess must be false",
    ),
    "Host Namespaces": (_set(lambda p: p, hostPID=True), "pod: hostPID must be false"),
    "Privileged Containers": (
        _set(_wait_sc, privileged=True),
        "container wait: securityContext.privileged must be false",
    ),
    "Capabilities (add)": (
        _set(_main_sc, capabilities={"drop": ["ALL"], "add": ["CHOWN"]}),
        "container main: securityContext.capabilities.add CHOWN is not allowed",
    ),
    "Capabilities (drop)": (
        _set(_wait_sc, capabilities={"drop": ["NET_RAW"]}),
        "container wait: securityContext.capabilities.drop must include ALL",
    ),
    "HostPath Volumes": (
        _volume(hostPath={"path": "/"}),
        "volume bad: hostPath volumes are not allowed",
    ),
    "Volume Types": (
        _volume(nfs={"server": "s", "path": "/"}),
        "volume bad: nfs volumes are not allowed",
    ),
    "Host Ports": (
        _set(_main, ports=[{"containerPort": 80, "hostPort": 8080}]),
        "container main: ports hostPort 8080 must be 0 or unset",
    ),
    "Host Probes / Lifecycle Hooks": (
        _set(_main, livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
        "container main: livenessProbe.httpGet.host must be unset",
    ),
    "AppArmor": (
        _set(_main_sc, appArmorProfile={"type": "Unconfined"}),
        "container main: securityContext.appArmorProfile.type Unconfined is not allowed",
    ),
    "SELinux": (
        _set(_main_sc, seLinuxOptions={"type": "spc_t"}),
        "container main: securityContext.seLinuxOptions.type spc_t is not allowed",
    ),
    "SELinux (user)": (
        _set(_pod_sc, seLinuxOptions={"user": "root"}),
        "pod: securityContext.seLinuxOptions.user must be unset",
    ),
    "/proc Mount Type": (
        _set(_main_sc, procMount="Unmasked"),
        "container main: securityContext.procMount must be Default",
    ),
    "Seccomp (Unconfined)": (
        _set(_main_sc, seccompProfile={"type": "Unconfined"}),
        "container main: securityContext.seccompProfile.type Unconfined is not allowed",
    ),
    "Seccomp (unset)": (
        _drop_pod("seccompProfile"),
        "container wait: securityContext.seccompProfile.type must be RuntimeDefault or Localhost"
        " (in the container or the pod)",
    ),
    "Sysctls": (
        _set(_pod_sc, sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "pod: securityContext.sysctls kernel.msgmax is not a safe sysctl",
    ),
    "Privilege Escalation": (
        _drop("allowPrivilegeEscalation"),
        "container wait: securityContext.allowPrivilegeEscalation must be false",
    ),
    "Running as Non-root (pod unset)": (
        _drop_pod("runAsNonRoot"),
        "container init: securityContext.runAsNonRoot must be true (in the container or the pod)",
    ),
    "Running as Non-root (container false)": (
        _set(_wait_sc, runAsNonRoot=False),
        "container wait: securityContext.runAsNonRoot must be true (in the container or the pod)",
    ),
    "Running as Non-root user": (
        _set(_main_sc, runAsUser=0),
        "container main: securityContext.runAsUser must not be 0",
    ),
}


def test_a_compliant_pod_has_no_violation():
    assert restricted(COMPLIANT) == []


@pytest.mark.parametrize("control", CASES)
def test_each_control_can_fail(control):
    change, expected = CASES[control]
    pod = copy.deepcopy(COMPLIANT)
    change(pod)
    assert expected in restricted(pod)


def test_every_control_has_a_case():
    assert {case.split(" (")[0] for case in CASES} == {control for control, *_ in RULES}


def test_baseline_allows_what_only_restricted_forbids():
    pod = copy.deepcopy(COMPLIANT)
    pod["securityContext"] = {}
    pod["containers"][0]["securityContext"] = {"capabilities": {"add": ["CHOWN"]}}
    assert check(pod, "baseline") == []
    assert "container wait: securityContext.capabilities.add CHOWN is not allowed" in check(
        pod, "restricted"
    )
    pod["containers"][0]["securityContext"] = {"capabilities": {"add": ["SYS_ADMIN"]}}
    assert check(pod, "baseline") == [
        "container wait: securityContext.capabilities.add SYS_ADMIN is not allowed"
    ]
    with pytest.raises(ValueError, match="'privileged'"):
        check(pod, "privileged")


def test_strategic_merge_by_name_keeps_the_order():
    pod = {"containers": [{"name": "wait", "image": "e"}, {"name": "main", "env": [{"name": "A"}]}]}
    patch = {"containers": [{"name": "main", "env": [{"name": "B"}], "args": ["x"]}]}
    merged = apply_pod_spec_patch(pod, json.dumps(patch))
    assert merged["containers"] == [
        {"name": "wait", "image": "e"},
        # A new item goes ahead of the original's (mergeSortedSlice: the patch's item first).
        {"name": "main", "env": [{"name": "B"}, {"name": "A"}], "args": ["x"]},
    ]
    # The patch's own order wins for the items it names (strategicpatch normalizeElementOrder).
    swapped = apply_pod_spec_patch(pod, "containers: [{name: main}, {name: wait}]")
    assert [c["name"] for c in swapped["containers"]] == ["main", "wait"]
    assert apply_pod_spec_patch({"a": {"b": 1, "c": 2}}, '{"a": {"b": null}}') == {"a": {"c": 2}}
    with pytest.raises(ValueError, match="invalid podSpecPatch"):
        apply_pod_spec_patch(pod, "{not json")


def _manifests():
    for path in MANIFESTS:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for template in doc["spec"].get("templates", []):
            if "container" in template:
                yield pytest.param(doc, template["name"], id=f"{path.stem}-{template['name']}")


@pytest.mark.parametrize(("doc", "template"), list(_manifests()))
def test_golden_pods_have_argo_containers_and_the_patched_resources(doc, template):
    pod = pod_spec(doc, template)
    assert [c["name"] for c in pod["initContainers"]] == ["init"]
    assert [c["name"] for c in pod["containers"]] == ["wait", "main"]
    main = pod["containers"][1]
    assert main["resources"]["limits"] == {
        "cpu": "{{inputs.parameters.cpu}}",
        "memory": "{{inputs.parameters.memory}}",
    }
    assert (
        main["args"]
        == next(t for t in doc["spec"]["templates"] if t["name"] == template)["container"]["args"]
    )
    volumes = {v["name"] for v in pod["volumes"]}
    assert {"var-run-argo", "tmp-dir-argo", "workdir"} <= volumes


@pytest.mark.parametrize(("doc", "template"), list(_manifests()))
def test_golden_pods_pass_restricted_with_argos_default_config(doc, template):
    assert restricted(pod_spec(doc, template)) == []


def test_an_operators_executor_context_is_merged_under_the_patch():
    doc = yaml.safe_load(MANIFESTS[0].read_text(encoding="utf-8"))
    name = next(t["name"] for t in doc["spec"]["templates"] if "container" in t)
    executor = {"securityContext": {"readOnlyRootFilesystem": True, "capabilities": {"add": ["X"]}}}
    pod = pod_spec(doc, name, executor=executor)
    assert pod["containers"][0]["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["X"], "drop": ["ALL"]},
    }
    assert "container wait: securityContext.capabilities.add X is not allowed" in restricted(pod)


def test_validate_names_the_template_and_the_container(tmp_path):
    doc = yaml.safe_load(MANIFESTS[0].read_text(encoding="utf-8"))
    del doc["spec"]["securityContext"]
    for template in doc["spec"]["templates"]:
        template.pop("podSpecPatch", None)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    problems = validate_file(path, restricted_pods=True)
    template = doc["spec"]["templates"][0]["name"]
    expected = (
        f"template {template}: pod security 'restricted': "
        "container wait: securityContext.allowPrivilegeEscalation must be false"
    )
    assert expected in problems
    assert problems == pod_security(doc)
    assert validate_file(path) == []  # off unless asked for
