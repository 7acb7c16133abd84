"""The pod spec Argo's controller builds for a container template, offline.

`pod_spec(manifest, template)` follows the controller of argo-workflows v4.1.2 (commit f016ad89;
"workflowpod.go" below is workflow/controller/workflowpod.go there) in its default, legacy pod
layout (workflowpod_layout.go, newPodLayout: init-less pods are opt-in): an `init` container,
the `wait` container, then `main`, the pod-level securityContext, the volumes, and last the
workflow's and the template's podSpecPatch. It models what a Pod Security Standard looks at
(security contexts, volumes, host settings); environment, commands, images and deadlines are
only sketched. `{{...}}` placeholders stay as they are: they are strings.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

MAIN, WAIT, INIT = "main", "wait", "init"  # workflow/common/common.go, *ContainerName
# The controller's --executor-image default; an operator's executor.image replaces it.
EXECUTOR_IMAGE = "quay.io/argoproj/argoexec:v4.1.2"
# workflowpod.go, package variables volumeVarArgo, volumeTmpDir and volumeMountVarArgo.
VAR_RUN_ARGO = {"name": "var-run-argo", "emptyDir": {}}
TMP_DIR_ARGO = {"name": "tmp-dir-argo", "emptyDir": {}}
VAR_RUN_ARGO_MOUNT = {"name": "var-run-argo", "mountPath": "/var/run/argo"}
# The executor's token (workflow/common/common.go, ServiceAccountToken*).
SA_TOKEN_VOLUME = "exec-sa-token"
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"

# The lists a strategic merge patch merges item by item, and their merge keys: the
# patchMergeKey tags of k8s.io/api/core/v1 types.go (PodSpec, Container). Every other list is
# replaced by the patch's.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def pod_spec(manifest: dict, template: str, *, executor: dict | None = None) -> dict:
    """The pod spec (Kubernetes field names) of container template `template`; `executor` is
    the controller's `executor` config (a Container), None for Argo's default (none)."""
    spec = manifest.get("spec") or {}
    tmpl = next((t for t in spec.get("templates") or [] if t.get("name") == template), None)
    if tmpl is None:
        raise ValueError(f"no template {template!r} in the manifest")
    if not isinstance(tmpl.get("container"), dict):
        raise ValueError(f"template {template!r} is not a container template")
    # config/config.go, GetExecutor: an empty Container when the operator configured none.
    executor = executor or {}
    # workflowpod.go, build: a container template's container is always named main.
    main = {**copy.deepcopy(tmpl["container"]), "name": MAIN}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # createVolumes: Argo's two emptyDirs, then the template's own volumes.
        "volumes": [VAR_RUN_ARGO, TMP_DIR_ARGO, *copy.deepcopy(tmpl.get("volumes") or [])],
        # build: the aux container (legacyLayout.auxContainer: newWaitContainer) before main.
        "containers": [_exec_container(WAIT, tmpl, spec, executor), main],
        # legacyLayout.initContainers -> newInitContainers: standardInitContainer always, for
        # every template (plus one per artifact plugin; our templates have no artifacts).
        "initContainers": [_exec_container(INIT, tmpl, spec, executor)],
    }
    if spec.get("hostNetwork") is not None:
        pod["hostNetwork"] = spec["hostNetwork"]
    _service_account(pod, tmpl, spec)
    # addSchedulingConstraints: the template's PodSecurityContext, else the workflow's.
    if context := tmpl.get("securityContext") or spec.get("securityContext"):
        pod["securityContext"] = copy.deepcopy(context)
    _volume_references(pod, tmpl, spec)
    # build, after addOutputArtifactsVolumes: every init container mounts /var/run/argo.
    for c in pod["initContainers"]:
        c["volumeMounts"] = [*c.get("volumeMounts", []), VAR_RUN_ARGO_MOUNT]
    # build -> processPodSpecPatch: the workflow's patch, then the template's, applied by
    # util.ApplyPodSpecPatch after every container above is in place.
    for patch in (spec.get("podSpecPatch"), tmpl.get("podSpecPatch")):
        if patch:
            pod = apply_pod_spec_patch(pod, patch)
    # build, after the patch: the executor-image container gets /tmp from tmp-dir-argo (by
    # its index), every container /var/run/argo.
    image = executor.get("image", EXECUTOR_IMAGE)
    for i, c in enumerate(pod["containers"]):
        mounts = c.get("volumeMounts", [])
        if c.get("image") == image:
            tmp = {"name": TMP_DIR_ARGO["name"], "mountPath": "/tmp", "subPath": str(i)}
            mounts = [*mounts, tmp]
        c["volumeMounts"] = [*mounts, VAR_RUN_ARGO_MOUNT]
    return pod


def _exec_container(name: str, tmpl: dict, spec: dict, executor: dict) -> dict:
    """workflowpod.go, newExecContainer (with standardInitContainer / newWaitContainer)."""
    c: dict[str, Any] = {
        "name": name,
        "image": executor.get("image", EXECUTOR_IMAGE),
        "command": ["argoexec", name],
    }
    for key in ("imagePullPolicy", "resources", "securityContext", "args", "env"):
        if executor.get(key):
            c[key] = copy.deepcopy(executor[key])
    # Only resource templates are locked down by default (common.MinimalCtrSC); a container
    # template's executor containers get the operator's executor.securityContext or nothing.
    if _executor_account(tmpl, spec):
        token = {"name": SA_TOKEN_VOLUME, "mountPath": SA_TOKEN_PATH, "readOnly": True}
        c["volumeMounts"] = [token]
    return c


def _executor_account(tmpl: dict, spec: dict) -> str:
    """workflowpod.go, executorServiceAccountName: the template's, else the workflow's."""
    return (tmpl.get("executor") or {}).get("serviceAccountName") or (
        spec.get("executor") or {}
    ).get("serviceAccountName", "")


def _service_account(pod: dict, tmpl: dict, spec: dict) -> None:
    """workflowpod.go, setupServiceAccount."""
    if account := tmpl.get("serviceAccountName") or spec.get("serviceAccountName"):
        pod["serviceAccountName"] = account
    automount = tmpl.get("automountServiceAccountToken", spec.get("automountServiceAccountToken"))
    if automount is False:
        pod["automountServiceAccountToken"] = False
    if executor := _executor_account(tmpl, spec):
        # The controller looks the token Secret up; its name is only known in the cluster.
        token = {"secretName": f"{executor}.service-account-token"}
        pod["volumes"].append({"name": SA_TOKEN_VOLUME, "secret": token})


def _volume_references(pod: dict, tmpl: dict, spec: dict) -> None:
    """workflowpod.go, addVolumeReferences: a workflow volume that main mounts joins the pod."""
    known = {v["name"] for v in pod["volumes"]}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in tmpl["container"].get("volumeMounts") or []:
        name = mount.get("name")
        if name in known:
            continue
        if name not in volumes:
            raise ValueError(f"volume {name!r} not found in workflow spec")
        pod["volumes"].append(copy.deepcopy(volumes[name]))
        known.add(name)


# -- util.ApplyPodSpecPatch --------------------------------------------------------------------
def apply_pod_spec_patch(pod: dict, patch: str) -> dict:
    """`pod` patched as workflow/util/util.go ApplyPodSpecPatch does: the patch (JSON, or YAML
    converted to JSON) applied as a strategic merge patch of a PodSpec
    (strategicpatch.StrategicMergePatch): maps merged recursively, a null deletes its key, the
    lists of MERGE_KEYS merged item by item, every other list replaced."""
    text = patch.strip()
    try:
        value = json.loads(text) if text.startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"invalid podSpecPatch {text[:60]!r}: {' '.join(str(e).split())}") from e
    if not isinstance(value, dict):
        raise ValueError(f"invalid podSpecPatch {text[:60]!r}: not an object")
    return _merge(pod, value)


def _merge(original: dict, patch: dict) -> dict:
    out = copy.deepcopy(original)
    for key, value in patch.items():
        if key.startswith("$"):
            raise ValueError(f"podSpecPatch: directive {key!r} is not supported here")
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_list(out[key], value, MERGE_KEYS[key])
        else:
            out[key] = _merge({}, value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def _merge_list(original: list, patch: list, key: str) -> list:
    """Items with the same merge key merged, new ones added. The order is strategicpatch's
    (apimachinery strategic_merge_patch.go, normalizeElementOrder and mergeSortedSlice): the
    patch's items keep the patch's order, the others the original's, the two interleaved by
    their places in the original."""
    if not all(isinstance(item, dict) for item in [*original, *patch]):
        raise ValueError(f"podSpecPatch: a list merged by {key!r} holds a non-object")
    place = {item.get(key): i for i, item in enumerate(original)}
    patched = [
        _merge(original[place[item.get(key)]], item) if item.get(key) in place else _merge({}, item)
        for item in patch
    ]
    keys = {item.get(key) for item in patch}
    kept = [copy.deepcopy(item) for item in original if item.get(key) not in keys]
    merged: list = []
    while kept or patched:
        ahead = kept and patched and patched[0].get(key) in place
        if not patched or (ahead and place[kept[0].get(key)] < place[patched[0].get(key)]):
            merged.append(kept.pop(0))
        else:
            merged.append(patched.pop(0))
    return merged
