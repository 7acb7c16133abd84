"""The image, without a Docker engine. The Dockerfile is linted. Its build stage's virtualenv is
built here with the same pip commands (DEPS_STEPS, WHEEL_STEPS; the lint test finds them there):
from image/requirements.lock with --no-deps, then the wheel of exactly the sources the Dockerfile
copies. In it: crcmod's C extension is in use, only the pods' dependencies are installed, and the
image's command lines run in an /app-like directory.

The virtualenv is cached under pytest's cache (.pytest_cache/d/image-env), like Docker's layer
cache: the dependencies are rebuilt when the lock changes, the wheel when the sources change."""

from __future__ import annotations

import fcntl
import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from workload.testing.pods import REPO

LOCK = REPO / "image" / "requirements.lock"
EXIT_USAGE = 2  # README's exit-code table: bad arguments

# The build stage's pip commands, verbatim (test_dockerfile_lint finds each in the Dockerfile).
# Paths are the image's; `_argv` maps them to this test's. The lock's part and the wheel's part
# are cached separately.
DEPS_STEPS = (
    "python3 -m venv --without-pip /opt/venv",
    "pip --python /opt/venv/bin/python install --no-cache-dir --no-deps -r /tmp/requirements.lock",
)
WHEEL_STEPS = (
    "pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist .",
    "pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /tmp/dist/workload-*.whl",
    "pip --python /opt/venv/bin/python check",
)
BUILD_WORKDIR = "/src"  # where the build stage copies the package's sources

# Installed on a developer's machine (the dev and argo extras), never in a pod.
NOT_IN_IMAGE = (
    "hera",
    "yaml",
    "duckdb",
    "polars",
    "matplotlib",
    "moto",
    "pytest",
    "hypothesis",
    "pip",
    "setuptools",
)


def instructions(path: Path) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each FROM .. up to the next FROM."""
    starts = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    return [steps[a:b] for a, b in zip(starts, [*starts[1:], len(steps)], strict=True)]


def commands(stage: list[tuple[str, str]]) -> list[str]:
    """Every shell command of a stage's RUN instructions, split at `&&`."""
    return [c.strip() for k, a in stage if k == "RUN" for c in a.split("&&")]


def wheel_sources(build: list[tuple[str, str]]) -> list[str]:
    """The build context paths the build stage copies into its source directory."""
    workdir, sources = None, []
    for keyword, args in build:
        if keyword == "WORKDIR":
            workdir = args
        elif keyword == "COPY" and workdir == BUILD_WORKDIR and not args.startswith("--"):
            sources += args.split()[:-1]
    return sources


def test_dockerfile_lint():
    steps = instructions(REPO / "Dockerfile")
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], a.split()[0])
        for k, a in steps
        if k == "FROM"
    ]
    assert len(bases) == 2, "multi-stage: build the environment, then a slim runtime"
    for base in bases:
        assert base.startswith("python:3.11."), base
        tag = base.partition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+-slim(-\w+)?", tag.split("@")[0]), base
    build, final = stages(steps)
    assert build[0][1].endswith(" AS build")

    # The build stage: a compiler for crcmod, the lock and the wheel with the pip commands
    # this test runs, and the checks.
    run = commands(build)
    assert any(
        re.fullmatch(r"apt-get install -y --no-install-recommends gcc libc6-dev", c) for c in run
    )
    for step in DEPS_STEPS + WHEEL_STEPS:
        assert step in run, f"the Dockerfile no longer runs {step!r}: update PIP_STEPS"
    assert any("_usingExtension" in c for c in run), "the build checks crcmod's C extension"
    assert ("COPY", "image/requirements.lock /tmp/requirements.lock") in build
    for c in run:
        if re.match(r"pip (--python \S+ )?(install|wheel)\b", c):
            assert "--no-cache-dir" in c, c
    sources = wheel_sources(build)
    assert sources and "workload" in sources and "pyproject.toml" in sources, sources

    # The runtime stage: the base plus the finished virtualenv, the two scripts and a user.
    assert [a for k, a in final if k == "COPY" and a.startswith("--from")] == [
        "--from=build /opt/venv /opt/venv"
    ]
    assert not any(re.search(r"\b(apt-get|pip|gcc|wheel)\b", c) for c in commands(final))
    env = " ".join(a for k, a in final if k == "ENV")
    assert "PATH=/opt/venv/bin:$PATH" in env  # `python3` is the virtualenv's
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert ("WORKDIR", "/app") in final
    assert ("COPY", "image/process.py image/merge.py ./") in final
    assert not any(re.search(r"SECRET|TOKEN|PASSWORD", a) for k, a in steps if k == "ENV")

    ignore = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # deny by default, then allow what the build copies
    copied = [p for k, a in steps if k == "COPY" and not a.startswith("--") for p in a.split()[:-1]]
    for path in copied:
        assert f"!{path}" in ignore or f"!{path}/" in ignore, f"{path} is not in the context"


def lock_names() -> list[str]:
    lines = [
        line for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.\-]+", line) for line in lines), lines
    return [canonical(line.split("==")[0]) for line in lines]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_pins_every_runtime_dependency_and_nothing_else():
    names = set(lock_names())
    assert {"pyarrow", "numpy", "fsspec", "ossfs", "oss2", "s3fs", "crcmod"} <= names
    tooling = {"hera", "pyyaml", "duckdb", "polars", "matplotlib", "moto", "pytest", "boto3"}
    assert not names & tooling, names & tooling


# --- the build stage's virtualenv ---------------------------------------------------------------


def _argv(step: str, venv: Path, dist: Path) -> list[str]:
    """A Dockerfile pip step as this test runs it: this interpreter's pip, this test's paths.
    --no-cache-dir is dropped (an image layer must not keep pip's cache; here the cache lets a
    rebuild run offline)."""
    out: list[str] = []
    for i, token in enumerate(step.split()):
        if token == "--no-cache-dir":
            continue
        if i == 0:
            out += [sys.executable, "-m", "pip"] if token == "pip" else [sys.executable]
            continue
        token = token.replace("/opt/venv", str(venv)).replace("/tmp/dist", str(dist))
        token = token.replace("/tmp/requirements.lock", str(LOCK))
        if "*" in token:
            (match,) = Path(token).parent.glob(Path(token).name)
            token = str(match)
        out.append(token)
    return out


def _run(step: str, venv: Path, scratch: Path) -> None:
    argv = _argv(step, venv, scratch / "dist")
    if " install " in step and "workload-" in step:
        argv.append("--force-reinstall")  # new sources, same version: replace the cached copy
    r = subprocess.run(argv, cwd=scratch / "src", capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        pytest.fail(f"{step!r} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def _require_compiler() -> None:
    """crcmod's C extension needs a C compiler and Python's headers; without them crcmod's setup
    silently installs its pure-Python fallback, so say so before building."""
    if shutil.which("gcc") is None:
        pytest.fail(
            "gcc is not on PATH: crcmod's C extension (oss2's CRC-64) must be compiled, as the "
            "image's build stage does; install a compiler (apt-get install gcc libc6-dev)"
        )
    header = Path(sysconfig.get_paths()["include"], "Python.h")
    if not header.exists():
        pytest.fail(f"{header} is missing: install this Python's headers (e.g. python3-dev)")


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()


def _stage_sources(src: Path) -> str:
    """Copy what the build stage copies into its source directory (less what .dockerignore
    drops); return a digest of it."""
    build, _ = stages(instructions(REPO / "Dockerfile"))
    parts = []
    for name in wheel_sources(build):
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(
                origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(origin, src / name)
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        parts += [str(path.relative_to(src)).encode(), path.read_bytes()]
    return _digest(*parts)


def _build(cache: Path, scratch: Path) -> Path:
    deps_key = _digest(
        LOCK.read_bytes(),
        sys.version.encode(),
        platform.machine().encode(),
        "\n".join(DEPS_STEPS).encode(),
    )[:16]
    venv = cache / f"venv-{deps_key}"
    src = scratch / "src"  # the build stage's /src
    src.mkdir()
    if not (venv / ".deps-done").exists():
        _require_compiler()
        for old in cache.glob("venv-*"):  # a previous lock's environment
            shutil.rmtree(old)
        for step in DEPS_STEPS:
            _run(step, venv, scratch)
        (venv / ".deps-done").write_text(LOCK.read_text())
    wheel_key = _digest(_stage_sources(src).encode(), "\n".join(WHEEL_STEPS).encode())
    marker = venv / ".wheel-key"
    if not marker.exists() or marker.read_text() != wheel_key:
        marker.unlink(missing_ok=True)
        for step in WHEEL_STEPS:
            _run(step, venv, scratch)
        marker.write_text(wheel_key)
    return venv


@pytest.fixture(scope="module")
def image_python(pytestconfig, tmp_path_factory) -> Iterator[Path]:
    """The build stage's /opt/venv/bin/python3, built (or reused) as the Dockerfile builds it."""
    pytest_cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    if pytest_cache is not None:
        cache = Path(pytest_cache.mkdir("image-env"))
    else:
        cache = tmp_path_factory.mktemp("image-env")
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; readers wait for it
        venv = _build(cache, tmp_path_factory.mktemp("image-build"))
        fcntl.flock(lock, fcntl.LOCK_SH)  # no other session rebuilds it under these tests
        yield venv / "bin" / "python3"


def _python(image_python: Path, code: str) -> str:
    r = subprocess.run(
        [str(image_python), "-I", "-c", code], capture_output=True, text=True, timeout=300
    )  # -I: not the working directory, not PYTHON* variables, not the user's site-packages
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_crcmod_uses_its_c_extension(image_python):
    code = "import crcmod, crcmod._crcfunext; from crcmod.crcmod import _usingExtension as c; "
    r = subprocess.run(
        [str(image_python), "-I", "-c", code + "print(c)"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip() == "True", (
        "crcmod fell back to pure Python (about 11 MB/s for oss2's CRC-64): its C extension was "
        "not compiled; check gcc and libc6-dev, and `pip cache remove crcmod` for a stale wheel\n"
        + r.stderr
    )


def test_only_the_pods_dependencies_are_installed(image_python):
    code = "import importlib.util as u, sys; "
    code += f"print(','.join(m for m in {NOT_IN_IMAGE!r} if u.find_spec(m)))"
    assert _python(image_python, code) == "", "installed in the image, but no pod needs it"
    code = "import importlib.metadata as m; print('\\n'.join(d.name for d in m.distributions()))"
    installed = sorted(canonical(n) for n in _python(image_python, code).split())
    assert installed == sorted([*lock_names(), "workload"])


def test_image_environment_runs_the_image_command_lines(image_python, tmp_path):
    app = tmp_path / "app"  # the image's WORKDIR
    app.mkdir()
    for name in ("process.py", "merge.py"):
        shutil.copy(REPO / "image" / name, app / name)
    root = tmp_path / "vol"  # the PVC at /mnt/vol
    # the image's PATH: `python3` is the virtualenv's
    env = {"WORKLOAD_ROOT": str(root), "PATH": f"{image_python.parent}:/usr/bin:/bin"}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["python3", *argv], cwd=app, env=env, capture_output=True, text=True, timeout=300
        )

    where = run("-c", "import sys, workload; print(sys.executable, workload.__file__)").stdout
    executable, package = where.split()
    assert executable == str(image_python), where
    assert package.startswith(str(image_python.parent.parent)), where  # the wheel's, not ours
    r = run(
        "-m",
        "workload",
        "generate",
        "--files",
        "8",
        "--rows",
        "500",
        "--keys",
        "100",
        "--seed",
        "4",
    )
    assert r.returncode == 0, r.stderr
    for i in range(4):
        r = run("process.py", str(i), "1")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.splitlines()[-1])["index"] == i  # the metrics line
    r = run("merge.py", "0", "4", "--summary-file", str(tmp_path / "summary.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["rows"] == 4000
    r = run("-m", "workload", "verify")
    assert r.returncode == 0, r.stderr
    r = run("process.py", "9", "1")
    assert r.returncode == EXIT_USAGE and "file_number 9 is beyond level 1" in r.stderr
