"""Trust under faults, on a local root (a NAS is a local path): kill -9 at random moments, two
copies of a pod at once, random byte damage to inputs, a full disk. Every outcome is success
with the undisturbed run's bytes, or a documented exit code with one error line and nothing
under a final name; a reader following README's rule never sees a mix of two runs."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workload import errors, layout
from workload.generate import generate
from workload.storage import open_store
from workload.testing.pods import cli
from workload.verify import NoResult, read_result, verify

FILES, ROWS, KEYS = 6, 20_000, 3000
POD = "workload.process"
FINAL = "workload.final"
# Dead writers' leftovers are removed at once in these tests (the default waits 300 s, which
# guards volumes whose locks do not reach other nodes).
NOW = {"WORKLOAD_STALE_SECONDS": "0"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trust-sample")
    generate(open_store(str(root)), FILES, ROWS, KEYS, seed=3)
    return root


@pytest.fixture(scope="module")
def reference(sample, tmp_path_factory) -> Path:
    """The undisturbed run: every pod through its command line."""
    root = tmp_path_factory.mktemp("trust-reference") / "root"
    shutil.copytree(sample, root)
    for i in range(3):
        assert pod(root, str(i), "1").returncode == 0
    assert pod(root, "0", "3", module=FINAL).returncode == 0
    return root


@pytest.fixture
def root(sample, tmp_path) -> Path:
    shutil.copytree(sample, tmp_path / "root")
    return tmp_path / "root"


def pod(root, *args, module=POD, env=None):
    return cli(*args, "--root", str(root), module=module, env={**NOW, **(env or {})})


def start(root, *args, module=POD, env=None) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("WORKLOAD_", "AWS_"))}
    command = [sys.executable, "-m", module, *args, "--root", str(root)]
    return subprocess.Popen(
        command,
        env={**full, **NOW, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


def result_files(root: Path) -> tuple[bytes, bytes]:
    return (root / layout.BY_KEY).read_bytes(), (root / layout.BY_CATEGORY).read_bytes()


def test_level_pod_killed_at_random_moments_then_rerun(root, reference):
    rng = random.Random(11)
    expected = (reference / "l2/0.parquet").read_bytes()
    for _ in range(6):
        proc = start(root, "0", "1")
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        out = root / "l2/0.parquet"
        # Killed before the rename: nothing under the final name; after it: the whole file.
        assert not out.exists() or out.read_bytes() == expected
    assert pod(root, "0", "1").returncode == 0
    assert (root / "l2/0.parquet").read_bytes() == expected
    assert leftovers(root) == []  # the rerun removed every dead writer's temporary


def test_final_pod_killed_at_random_moments_never_shows_a_mix(root, reference):
    for i in range(3):
        assert pod(root, str(i), "1").returncode == 0
    # An old, different result: the first file of l2 alone.
    assert pod(root, "0", "1", "--partial", module=FINAL).returncode == 0
    store = open_store(str(root))
    old_summary, _ = read_result(store)
    rng = random.Random(5)
    seen = set()
    for _ in range(8):
        proc = start(root, "0", "3", module=FINAL)
        time.sleep(rng.uniform(0.1, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if not (root / layout.SUMMARY).exists():
            seen.add("no marker")
            continue
        summary, _ = read_result(store)  # raises NoResult on a mix: it must not
        assert summary in (old_summary, json.loads((reference / layout.SUMMARY).read_text()))
        seen.add("old" if summary == old_summary else "new")
    assert pod(root, "0", "3", module=FINAL).returncode == 0
    assert result_files(root) == result_files(reference)
    assert (root / layout.SUMMARY).read_bytes() == (reference / layout.SUMMARY).read_bytes()
    assert verify(store) == []
    assert leftovers(root) == []
    assert seen  # at least one state was observed (which ones depends on timing)


def test_a_mix_of_two_runs_is_refused_by_the_reader_rule(root, reference):
    for i in range(3):
        assert pod(root, str(i), "1").returncode == 0
    assert pod(root, "0", "1", "--partial", module=FINAL).returncode == 0
    # What a reader would see if the data files were swapped under an old marker.
    shutil.copy(reference / layout.BY_KEY, root / layout.BY_KEY)
    with pytest.raises(NoResult, match="does not match"):
        read_result(open_store(str(root)))
    assert "does not match" in verify(open_store(str(root)))[0]


def test_two_copies_of_a_pod_at_once_both_succeed(root, reference):
    for args, module in ((("1", "1"), POD), (("0", "1"), POD), (("2", "1"), POD)):
        procs = [start(root, *args, module=module, env={"WORKLOAD_STALE_SECONDS": "300"})]
        procs.append(start(root, *args, module=module, env={"WORKLOAD_STALE_SECONDS": "0"}))
        for p in procs:
            _, stderr = p.communicate(timeout=60)
            assert p.returncode == 0, stderr
    procs = [start(root, "0", "3", module=FINAL) for _ in range(2)]
    for p in procs:
        _, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
    assert result_files(root) == result_files(reference)
    for i in range(3):
        assert (root / f"l2/{i}.parquet").read_bytes() == (
            reference / f"l2/{i}.parquet"
        ).read_bytes()
    assert leftovers(root) == []


def test_random_byte_damage_never_gives_a_wrong_result(sample, reference, tmp_path):
    """16 random bytes overwritten at a random offset of a random input, 12 times: each run is
    either the undisturbed result or exit 66 with one line, and never a published result."""
    rng = random.Random(2026)
    outcomes = []
    for trial in range(12):
        root = tmp_path / f"t{trial}"
        shutil.copytree(sample, root)
        target = root / f"l1/{rng.randrange(FILES)}.parquet"
        data = bytearray(target.read_bytes())
        offset = rng.randrange(len(data) - 16)
        data[offset : offset + 16] = rng.randbytes(16)
        target.write_bytes(bytes(data))
        failed = None
        for args, module in ((("0", "1"), POD), (("1", "1"), POD), (("2", "1"), POD)):
            r = pod(root, *args, module=module)
            if r.returncode:
                failed = r
                break
        else:
            r = pod(root, "0", "3", module=FINAL)
            failed = r if r.returncode else None
        if failed is None:
            assert result_files(root) == result_files(reference), (target.name, offset)
            outcomes.append("same")
        else:
            assert failed.returncode == errors.EXIT_DATA, failed.stderr
            line = one_error_line(failed.stderr)
            assert target.name in line and "l1/" in line, line
            assert not (root / layout.SUMMARY).exists()
            outcomes.append("66")
    assert "66" in outcomes  # damage inside data pages is caught, not merely survived


def test_damage_to_an_intermediate_file_is_caught_by_its_page_checksums(root):
    for i in range(3):
        assert pod(root, str(i), "1").returncode == 0
    target = root / "l2/1.parquet"
    data = bytearray(target.read_bytes())
    middle = len(data) // 3  # inside the first row group's column data
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    target.write_bytes(bytes(data))
    r = pod(root, "0", "3", module=FINAL)
    assert r.returncode == errors.EXIT_DATA, r.stderr
    line = one_error_line(r.stderr)
    assert "l2/1.parquet" in line and "damaged" in line
    assert "reading again once" in r.stderr  # a bad transfer would have been absorbed
    assert not (root / layout.SUMMARY).exists()


def test_full_disk_is_its_own_exit_code_and_names_the_path(sample, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)])
    if made.returncode:
        pytest.skip("this machine cannot mount a tmpfs")
    try:
        root = mount / "root"
        (root / "l1").mkdir(parents=True)
        for name in ("0.parquet", "1.parquet", "_manifest.json"):
            shutil.copy(sample / "l1" / name, root / "l1" / name)
        manifest = json.loads((root / layout.MANIFEST).read_text())
        manifest["files"], manifest["rows_per_file"] = 2, manifest["rows_per_file"][:2]
        (root / layout.MANIFEST).write_text(json.dumps(manifest))
        free = shutil.disk_usage(mount).free
        (mount / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))
        r = pod(root, "0", "1")
        assert r.returncode == errors.EXIT_NO_SPACE, r.stderr
        line = one_error_line(r.stderr)
        assert "no space" in line and "l2/0.parquet" in line
        assert not (root / "l2/0.parquet").exists() and leftovers(root) == []
    finally:
        subprocess.run(["umount", "-l", str(mount)])
