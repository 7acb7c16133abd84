"""The image, without a Docker engine: the Dockerfile is linted, and the built wheel is installed
into a fresh virtualenv where the image's exact command lines run in an /app-like directory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO

from workload import errors
from workload.generate import generate
from workload.storage import open_store


def instructions(path: Path) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_lint():
    steps = instructions(REPO / "Dockerfile")
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], a.split()[0])
        for k, a in steps
        if k == "FROM"
    ]
    assert len(bases) >= 2, "multi-stage: build wheels, then a slim runtime"
    for base in bases:
        tag = base.partition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+-slim(-\w+)?", tag.split("@")[0]), base
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert ("WORKDIR", "/app") in final
    assert ("COPY", "image/process.py image/merge.py ./") in final
    assert any("requirements.lock" in a for k, a in steps if k == "RUN")
    assert not any(re.search(r"SECRET|TOKEN|PASSWORD", a) for k, a in steps if k == "ENV")
    ignore = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # deny by default, then allow what the build copies


def test_lock_pins_every_runtime_dependency():
    lines = [
        line
        for line in (REPO / "image/requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.\-]+", line) for line in lines), lines
    names = {line.split("==")[0].lower() for line in lines}
    assert {"pyarrow", "numpy", "fsspec", "ossfs", "oss2", "s3fs"} <= names


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory):
    """A fresh virtualenv holding only the built wheel; its dependencies are this test
    environment's (linked by a .pth), so nothing is downloaded but the build backend."""
    tmp = tmp_path_factory.mktemp("image")
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("workload-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python3"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def test_wheel_runs_the_image_command_lines(image_venv, tmp_path):
    app = tmp_path / "app"  # the image's WORKDIR
    app.mkdir()
    for name in ("process.py", "merge.py"):
        shutil.copy(REPO / "image" / name, app / name)
    root = tmp_path / "vol"  # the PVC at /mnt/vol
    generate(open_store(str(root)), 8, 500, 100, seed=4)
    env = {"WORKLOAD_ROOT": str(root), "PATH": "/usr/bin:/bin"}

    def run(*argv: str) -> subprocess.CompletedProcess:
        # the image's `python3`, i.e. the interpreter that has the wheel installed
        return subprocess.run(
            [str(image_venv), *argv], cwd=app, env=env, capture_output=True, text=True, timeout=300
        )

    where = run("-c", "import workload; print(workload.__file__)").stdout
    assert str(image_venv.parent.parent) in where, where  # the wheel's copy, not the checkout
    for i in range(4):
        r = run("process.py", str(i), "1")
        assert r.returncode == 0, r.stderr
    r = run("merge.py", "0", "4", "--summary-file", str(tmp_path / "summary.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["rows"] == 4000
    r = run("-m", "workload", "verify")
    assert r.returncode == 0, r.stderr
    r = run("process.py", "9", "1")
    assert r.returncode == errors.EXIT_USAGE and "file_number 9 is beyond level 1" in r.stderr
