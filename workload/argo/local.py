"""The pods of an expanded manifest (argo/expand.py) run here, wave after wave, as the cluster
would run them: each pod's exact argv in a folder laid out as the image's WORKDIR (/app with
process.py and merge.py), a private /tmp per pod for its output parameter files, the volume at
/mnt/vol mapped onto a local folder, Secret references resolved from what is given, and a
bound on the pods that run at once. Anything it cannot map is refused by name (Unsupported,
exit 78); a pod that fails raises PodFailed with its exit code.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import EXIT_INTERNAL, EXIT_TRANSIENT, UsageError, WorkloadError, register_secret
from .expand import Pod, SecretRef
from .expr import Unsupported

MOUNT = "/mnt/vol"  # the PVC in the manifests, and the package's default root
IMAGE_WORKDIR = "/app"  # the image's WORKDIR, holding process.py and merge.py
TMP = "/tmp/"  # private to each container; output parameter files there get a local directory


# The image's WORKDIR: the Dockerfile copies image/process.py and image/merge.py there. Their
# text, from here (tests/test_workflows_run.py checks it against image/).
IMAGE_SCRIPTS = {
    "process.py": ("level pod: `python3 process.py <file_number> <level>`", "process"),
    "merge.py": ("final pod: `python3 merge.py 0 <number>`", "final"),
}


def image_script(name: str) -> str:
    what, module = IMAGE_SCRIPTS[name]
    return (
        f'"""The seed\'s {what} in the image\'s WORKDIR."""\n\n'
        f"from workload.command import exit_now\nfrom workload.{module} import main\n\n"
        f'exit_now(main(prog="{name}"))\n'
    )


@contextlib.contextmanager
def image_workdir() -> Iterator[Path]:
    """A folder laid out as the image's WORKDIR (/app), for as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="app-") as folder:
        for name in IMAGE_SCRIPTS:
            Path(folder, name).write_text(image_script(name))
        yield Path(folder)


class PodFailed(WorkloadError):
    """A pod exited non-zero (its code is this error's) or left an output file missing."""

    def __init__(self, pod: Pod, returncode: int, stderr: str):
        last = stderr.strip().splitlines()[-1:] or [""]
        super().__init__(f"pod {pod.name} {pod.argv} exited {returncode}: {last[0]}")
        self.pod, self.returncode, self.stderr = pod, returncode, stderr
        self.exit_code = returncode if 0 < returncode < 256 else EXIT_INTERNAL


# -- running -----------------------------------------------------------------------------------
def resolve_env(pod: Pod, secrets: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """The pod's env with Secret references resolved, as the kubelet does."""
    out = {}
    for name, value in pod.env.items():
        if not isinstance(value, SecretRef):
            out[name] = value
        elif (value.name, value.key) in secrets:
            out[name] = secrets[value.name, value.key]
            register_secret(out[name])  # masked in every message from here on
        elif not value.optional:
            raise Unsupported(f"pod {pod.name}: secret {value.name}/{value.key} is missing")
    return out


@dataclass
class Result:
    pod: Pod
    stdout: str
    stderr: str
    outputs: dict[str, str]  # output parameter -> the file's content, as Argo collects it


def run(
    waves: list[list[Pod]],
    image_root: Path,
    *,
    volume: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[tuple[str, str], str] | None = None,
    workers: int = 2,
    in_process: bool = False,
) -> list[list[Result]]:
    """Run wave after wave. `image_root` stands for the image's WORKDIR, `volume` for the PVC at
    /mnt/vol (as WORKLOAD_ROOT, for pods without --root); `env` goes under each pod's own env.
    In-process runs call the image scripts' functions with the same argv, one pod at a time.
    A pod that exits non-zero, or leaves an output parameter's file missing, raises PodFailed."""
    results = []
    with tempfile.TemporaryDirectory(prefix="pods-") as scratch:
        for n, wave in enumerate(waves):

            def go(i: int, pod: Pod, n: int = n) -> Result:
                job = _prepare(pod, Path(scratch, f"{n}-{i}"), volume, env or {}, secrets or {})
                return (_in_process if in_process else _subprocess)(pod, Path(image_root), *job)

            with ThreadPoolExecutor(1 if in_process else workers) as pool:
                results.append(list(pool.map(go, range(len(wave)), wave)))
    return results


PYTHONS = ("python3", "python")  # the image has both


def _prepare(pod: Pod, tmp: Path, volume, env, secrets) -> tuple[list[str], dict, dict]:
    if (pod.working_dir or IMAGE_WORKDIR) != IMAGE_WORKDIR or pod.argv[:1] not in (
        [p] for p in PYTHONS
    ):
        raise Unsupported(f"pod {pod.name}: not python3 in {IMAGE_WORKDIR}: {pod.argv}")
    if others := sorted(set(pod.mounts) - {MOUNT}):
        raise Unsupported(f"pod {pod.name} mounts {others[0]}: only {MOUNT} is mapped here")
    argv = [_on_volume(pod, a, volume) for a in pod.argv]
    full = {k: v for k, v in os.environ.items() if not k.startswith(("WORKLOAD_", "AWS_", "OSS_"))}
    full |= {**env, **resolve_env(pod, secrets)}
    if not any(a == "--root" or a.startswith("--root=") for a in argv):
        if volume is None or MOUNT not in pod.mounts:
            raise Unsupported(f"pod {pod.name} reads the volume at {MOUNT}: pass volume=")
        full["WORKLOAD_ROOT"] = volume
    if outside := sorted(p for p in pod.outputs.values() if not p.startswith(TMP)):
        raise Unsupported(f"pod {pod.name}: outputs {outside} outside {TMP}")
    tmp.mkdir()  # the pod's own /tmp, for the files Argo collects as output parameters
    private = {p: str(tmp / p.removeprefix(TMP)) for p in pod.outputs.values()}
    outputs = {k: private[p] for k, p in pod.outputs.items()}
    return [sys.executable, *(private.get(a, a) for a in argv[1:])], full, outputs


def _on_volume(pod: Pod, arg: str, volume: str | None) -> str:
    """A path under the volume at MOUNT, as the folder that stands for it."""
    if arg != MOUNT and not arg.startswith(MOUNT + "/"):
        if MOUNT in arg:
            raise Unsupported(f"pod {pod.name}: {MOUNT} inside the argument {arg!r}")
        return arg
    if volume is None or MOUNT not in pod.mounts:
        raise Unsupported(f"pod {pod.name} reads {arg} but no volume is mounted there")
    return volume + arg.removeprefix(MOUNT)


def _finish(pod: Pod, code: int, stdout: str, stderr: str, outputs: dict) -> Result:
    """Argo's output parameters: the file's content without one trailing newline, or the
    parameter's valueFrom.default when the file is missing (else an executor error)."""
    if code != 0:
        raise PodFailed(pod, code, stderr)
    missing = [k for k, p in outputs.items() if not Path(p).exists()]
    if undefaulted := [outputs[k] for k in missing if k not in pod.output_defaults]:
        raise PodFailed(pod, 0, f"output parameter files missing: {undefaulted}")
    values = {k: pod.output_defaults[k] for k in missing}
    values |= {k: Path(p).read_text() for k, p in outputs.items() if k not in values}
    return Result(pod, stdout, stderr, {k: v.removesuffix("\n") for k, v in values.items()})


POD_SECONDS = 3600  # a pod that runs longer is stopped, as the manifests' deadline would


def _subprocess(pod: Pod, cwd: Path, argv: list[str], env: dict, outputs: dict) -> Result:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=POD_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise PodFailed(pod, EXIT_TRANSIENT, f"ran over {POD_SECONDS} s and was stopped") from None
    return _finish(pod, done.returncode, done.stdout, done.stderr, outputs)


def _in_process(pod: Pod, cwd: Path, argv: list[str], env: dict, outputs: dict) -> Result:
    from workload import final, outcome, process

    if argv[1:4] == ["-m", "workload", "outcome"]:  # the exit handler's command
        main, args = outcome.main, argv[4:]
    else:
        script = {"process.py": process.main, "merge.py": final.main}.get(argv[1])
        if script is None or not (cwd / argv[1]).is_file():
            raise Unsupported(f"pod {pod.name}: no image script {argv[1]!r} to run in-process")
        main, args = script, argv[2:]
    saved, out, err = dict(os.environ), io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args, prog=argv[1])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return _finish(pod, code, out.getvalue(), err.getvalue(), outputs)


def describe_waves(waves: list[list[Result]]) -> list[str]:
    """What `run-local` prints of a run (a manifest's or a Batch file's): a line per wave."""
    lines = [
        f"wave {n}: {len(wave)} pods succeeded ({', '.join(r.pod.name for r in wave[:3])}"
        f"{', ...' if len(wave) > 3 else ''})"
        for n, wave in enumerate(waves, 1)
    ]
    return [*lines, f"{sum(map(len, waves))} pods in {len(waves)} waves, all succeeded"]


# -- a manifest file, as `python -m workload.argo run-local` runs it ---------------------------
def read_documents(path: Path) -> list:
    """The documents of a JSON or YAML file: JSON values one after another (a Batch file, or
    the seed's definitions and submissions), else YAML documents (a manifest)."""
    import json

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise Unsupported(f"{path}: cannot be read ({type(exc).__name__})") from None
    decoder, values, pos = json.JSONDecoder(), [], 0
    try:
        while pos < len(text.rstrip()):
            pos = len(text) - len(text[pos:].lstrip())
            value, pos = decoder.raw_decode(text, pos)
            values.append(value)
        return values
    except ValueError:
        pass
    try:
        import yaml
    except ImportError:
        raise Unsupported(f"{path}: not JSON (YAML needs PyYAML: pip install pyyaml)") from None
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        raise Unsupported(f"{path}: neither JSON objects nor YAML") from None


def load_documents(path: Path) -> list[dict]:
    """The documents of a manifest file, each a mapping."""
    documents = read_documents(path)
    if not all(isinstance(d, dict) for d in documents):
        raise Unsupported(f"{path}: a document is not a mapping")
    return documents


def read_secrets(paths: list[Path]) -> dict[tuple[str, str], str]:
    """(Secret name, key) -> value, from Kubernetes Secret manifests (data, base64, and
    stringData, which wins, as the API server merges them)."""
    import base64
    import binascii

    out: dict[tuple[str, str], str] = {}
    for path in paths:
        for doc in load_documents(path):
            metadata = doc.get("metadata")
            if (
                doc.get("kind") != "Secret"
                or not isinstance(metadata, dict)
                or not metadata.get("name")
            ):
                raise Unsupported(f"--secret {path}: not a Kubernetes Secret with a name")
            if not all(isinstance(doc.get(k) or {}, dict) for k in ("data", "stringData")):
                raise Unsupported(f"--secret {path}: data and stringData must be mappings")
            name = str(metadata["name"])
            for key, value in (doc.get("data") or {}).items():
                try:
                    out[name, key] = base64.b64decode(str(value), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise Unsupported(f"--secret {path}: data.{key} is not base64") from None
            for key, value in (doc.get("stringData") or {}).items():
                out[name, key] = str(value)
    return out


def run_manifest(
    path: Path,
    *,
    parameters: Mapping[str, str],
    volumes: Mapping[str, str],
    secrets: list[Path],
    templates: list[Path],
    parallelism: int = 2,
    name: str | None = None,
) -> tuple[str, list[list[Result]]]:
    """The run's name and its results: every pod of the Workflow (or WorkflowTemplate) in
    `path`, run here in order, then its onExit handler's with the run's status (the handler's
    results are the last wave). `volumes` maps a PVC's claim name to the folder
    that stands for it, `secrets` are Secret manifests, `templates` hold the WorkflowTemplates
    a workflowTemplateRef names (those in `path` too), `name` is the run's {{workflow.name}}
    (default: expand.run_name's). A failed pod fails the run once the handler has run."""
    from .expand import expand, run_name

    if parallelism < 1:
        raise UsageError(f"--parallelism must be >= 1, got {parallelism}")
    documents = load_documents(path)
    library = [d for p in templates for d in load_documents(p)] + documents
    by_name = {
        d["metadata"]["name"]: d
        for d in library
        if d.get("kind") == "WorkflowTemplate" and "name" in (d.get("metadata") or {})
    }
    runnable = [d for d in documents if d.get("kind") == "Workflow"] or [
        d for d in documents if d.get("kind") == "WorkflowTemplate"
    ]
    if len(runnable) != 1:
        kinds = [d.get("kind") for d in documents]
        raise Unsupported(f"{path}: expected one Workflow or WorkflowTemplate, found {kinds}")
    manifest = runnable[0]
    name = name or run_name(manifest)
    try:
        waves = expand(manifest, dict(parameters), by_name, name=name)
        handler = {
            status: expand(manifest, dict(parameters), by_name, name=name, status=status)
            for status in ("Succeeded", "Failed")
        }
        spec = manifest["spec"]
        if "workflowTemplateRef" in spec:
            spec = by_name[spec["workflowTemplateRef"]["name"]]["spec"]
    except (KeyError, TypeError, AttributeError, IndexError) as exc:  # a field of a wrong shape
        raise Unsupported(
            f"{path}: not a manifest this expands ({type(exc).__name__}: {exc})"
        ) from None
    claims = {
        v["name"]: (v.get("persistentVolumeClaim") or {}).get("claimName")
        for v in spec.get("volumes") or []
    }
    every = [*waves, *handler["Succeeded"]]
    folder, resolved = mounted_folder(every, volumes, claims), read_secrets(secrets)
    with image_workdir() as app:
        try:
            done = run(waves, app, volume=folder, secrets=resolved, workers=parallelism)
        except PodFailed as failed:
            try:  # the handler runs, but the run's own failure is what is reported
                run(handler["Failed"], app, volume=folder, secrets=resolved, workers=parallelism)
            except WorkloadError as also:
                raise failed from also
            raise
        return name, done + run(handler["Succeeded"], app, volume=folder, secrets=resolved)


def mounted_folder(
    waves: list[list[Pod]], volumes: Mapping[str, str], keys: Mapping[str, str | None] | None = None
) -> str | None:
    """The folder given for the volume the pods mount at MOUNT: `volumes` maps a key to a
    folder, `keys` a volume's name to its key (a manifest's: its claim's name, None for a
    volume that is no claim; without `keys`, a Batch file's: the volume's own name)."""
    mounted = sorted({pod.mounts[MOUNT] for wave in waves for pod in wave if MOUNT in pod.mounts})
    if len(mounted) > 1:
        raise Unsupported(f"pods mount different volumes at {MOUNT}: {mounted}")
    named = {name: name if keys is None else keys.get(name) for name in mounted}
    for name, key in named.items():
        if key is None:
            raise Unsupported(f"volume {name!r} at {MOUNT} is not a persistentVolumeClaim")
        if key not in volumes:
            raise Unsupported(f"volume {name!r} at {MOUNT}: pass --volume {key}=PATH")
    if unknown := sorted(set(volumes) - set(named.values())):
        raise Unsupported(f"--volume {unknown[0]}: no pod mounts it at {MOUNT}")
    return next((local_folder(volumes[str(k)], "--volume") for k in named.values()), None)


def local_folder(path: str, flag: str) -> str:
    """The folder that stands for a volume, absolute (the pods run in the image's /app)."""
    folder = os.path.abspath(path)
    if not os.path.isdir(folder):
        raise Unsupported(f"{flag} {path}: no folder {folder}")
    return folder
