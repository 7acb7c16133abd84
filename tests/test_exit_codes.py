"""Every row of README's exit-code table, through the real command lines: the code, one error
line naming the bad value, and nothing published. Object-store rows (closed connections, short
bodies, 5xx, throttling, stalls, 403, a missing bucket) are in test_faults.py."""

from __future__ import annotations

import errno
import json
import shutil

import pytest

from workload import errors, layout
from workload.command import guard as _guard
from workload.errors import classify_storage
from workload.generate import generate
from workload.storage import open_store
from workload.testing.pods import REPO, cli


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("codes")
    generate(open_store(str(root)), 5, 1500, 200, seed=8)
    return root


@pytest.fixture
def root(sample, tmp_path):
    shutil.copytree(sample, tmp_path / "root")
    return tmp_path / "root"


def run(*args, module="workload.process", env=None):
    return cli(*args, module=module, env=env)


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def published(root) -> list[str]:
    names = [p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(root / "l1")]
    return sorted(str(p.relative_to(root)) for p in names)


def manifest(root) -> dict:
    return json.loads((root / layout.MANIFEST).read_text())


def test_the_codes_are_not_argo_executor_codes():
    # 64: the emissary failed itself (the controller marks the node Error); 65: the
    # supervisor failed before main (workflow/common/common.go); 1, 2 for Python and
    # 126-128, 137, 143 for the shell and signals are the user command's own.
    ours = {
        errors.EXIT_USAGE,
        errors.EXIT_DATA,
        errors.EXIT_INTERNAL,
        errors.EXIT_NO_SPACE,
        errors.EXIT_TRANSIENT,
        errors.EXIT_PERMISSION,
        errors.EXIT_CONFIG,
    }
    assert len(ours) == 7 and not ours & {1, 64, 65, 126, 127, 128, 137, 143}


# -- 2: bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "module", "needle"),
    [
        (["-1", "1"], "workload.process", "file_number must be an integer >= 0, got -1"),
        (["0", "0"], "workload.process", "level must be an integer >= 1, got 0"),
        (["9", "1"], "workload.process", "file_number 9 is beyond level 1"),
        (["0", "4"], "workload.final", "files 0..3 requested but level 1 has 5 files"),
        (["1", "4"], "workload.final", "or --partial"),
        (["0", "1", "--metrics-file", "/no/such/dir/m.json"], "workload.process", "--metrics-file"),
        (["0", "5", "--summary-file", "/no/such/dir/s.json"], "workload.final", "--summary-file"),
    ],
)
def test_bad_pod_arguments(root, argv, module, needle):
    result = run(*argv, "--root", str(root), module=module)
    assert result.returncode == errors.EXIT_USAGE, result.stderr
    assert needle in error_line(result)
    assert published(root) == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["generate", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["generate", "--skew", "nan"], "--skew must be a finite number >= 0, got nan"),
        (["generate", "--files", "0"], "--files must be an integer >= 1, got 0"),
        (["run", "--workers", "0"], "--workers must be an integer >= 1, got 0"),
        (["run", "--levels", "0"], "--levels must be an integer >= 1, got 0"),
        (["run", "--final-fan-in", "0"], "--final-fan-in must be an integer >= 1, got 0"),
        (["run", "--fan-in", "1"], "--fan-in must be an integer >= 2, got 1"),
        (["run", "--run", "l2"], "--run 'l2': a run is named by"),
        (["outcome", "--status", "Running"], "--status 'Running': expected one of"),
        (["outcome", "--status", "Succeeded", "--run", "../up"], "--run '../up'"),
    ],
)
def test_bad_flags_fail_before_any_work(tmp_path, argv, needle):
    result = run(*argv, "--root", str(tmp_path / "r"), module="workload")
    assert result.returncode == errors.EXIT_USAGE, result.stderr
    assert needle in error_line(result)
    assert not (tmp_path / "r").exists()  # nothing generated first


# -- 66: bad input data --------------------------------------------------------------------------
def _damage(root, how: str) -> None:
    if how == "input is a directory":
        (root / "l1/1.parquet").unlink()
        (root / "l1/1.parquet").mkdir()
    elif how == "manifest is a directory":
        (root / layout.MANIFEST).unlink()
        (root / layout.MANIFEST).mkdir()
    elif how == "l1 is a file":
        shutil.rmtree(root / "l1")
        (root / "l1").write_text("")
    elif how == "output is a directory":
        (root / "l2/0.parquet").mkdir(parents=True)
    elif how in ("files null", "files true", "files too few"):
        m = manifest(root)
        m["files"] = {"files null": None, "files true": True, "files too few": 4}[how]
        if how == "files too few":
            m["rows_per_file"] = m["rows_per_file"][:4]
        (root / layout.MANIFEST).write_text(json.dumps(m))
    elif how == "gap in names":
        (root / layout.MANIFEST).unlink()
        (root / "l1/2.parquet").unlink()


@pytest.mark.parametrize(
    ("how", "argv", "module", "needle"),
    [
        ("input is a directory", ["0", "1"], "workload.process", "l1/1.parquet is a directory"),
        ("manifest is a directory", ["0", "1"], "workload.process", "_manifest.json is a dir"),
        ("l1 is a file", ["0", "1"], "workload.process", "a part of"),
        ("output is a directory", ["0", "1"], "workload.process", "l2/0.parquet is a directory"),
        ("files null", ["0", "1"], "workload.process", "'files' must be an integer >= 1, got None"),
        ("files true", ["0", "5"], "workload.final", "'files' must be an integer >= 1, got True"),
        ("files too few", ["1", "1"], "workload.process", "the manifest undercounts the input"),
        ("files too few", ["0", "4"], "workload.final", "the manifest undercounts the input"),
        ("gap in names", ["0", "1"], "workload.process", "missing input"),
    ],
)
def test_wrong_layout_and_wrong_coverage(root, how, argv, module, needle):
    _damage(root, how)
    before = published(root)
    result = run(*argv, "--root", str(root), module=module)
    assert result.returncode == errors.EXIT_DATA, result.stderr
    line = error_line(result)
    assert needle in line
    if how == "gap in names":
        assert "l1/2.parquet" in line
    assert published(root) == before


# -- 78: bad configuration -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("root_url", "options", "env", "needle"),
    [
        ("memory://bucket/x", None, {}, "unsupported storage URL scheme 'memory'"),
        ("http://example.invalid/x", None, {}, "unsupported storage URL scheme 'http'"),
        ("s3://bucket/x", '{"endpoint": "x"}', {}, "unknown storage option(s) for s3://: endpoint"),
        ("LOCAL", '{"key": "x"}', {}, "unknown storage option(s) for a local path"),
        (
            "LOCAL",
            None,
            {"WORKLOAD_BATCH_ROWS": "ten"},
            "WORKLOAD_BATCH_ROWS='ten' is not a valid int",
        ),
        ("LOCAL", None, {"WORKLOAD_READ_WINDOW": "0"}, "WORKLOAD_READ_WINDOW must be >= 1"),
        ("LOCAL", None, {"WORKLOAD_STALL_SECONDS": "-1"}, "WORKLOAD_STALL_SECONDS must be"),
        ("LOCAL", None, {"WORKLOAD_OP": "sum"}, "unknown op 'sum'"),
        ("oss://bucket/x", None, {}, "oss:// needs an endpoint"),
    ],
)
def test_bad_configuration(root, root_url, options, env, needle):
    argv = ["0", "1", "--root", str(root) if root_url == "LOCAL" else root_url]
    if options:
        argv += ["--storage-options", options]
    result = run(*argv, env=env)
    assert result.returncode == errors.EXIT_CONFIG, result.stderr
    assert needle in error_line(result)
    assert published(root) == []


# -- 77 and 73 from errno, 70 for a bug: the classifier and the guard ----------------------------
@pytest.mark.parametrize(
    ("err", "code"),
    [
        (errno.EACCES, errors.EXIT_PERMISSION),
        (errno.EPERM, errors.EXIT_PERMISSION),
        (errno.EROFS, errors.EXIT_PERMISSION),
        (errno.ENOSPC, errors.EXIT_NO_SPACE),
        (errno.EDQUOT, errors.EXIT_NO_SPACE),
        (errno.ENOENT, errors.EXIT_DATA),
        (errno.EISDIR, errors.EXIT_DATA),
        (errno.ENOTDIR, errors.EXIT_DATA),
        (errno.ECONNRESET, errors.EXIT_TRANSIENT),
        (errno.ETIMEDOUT, errors.EXIT_TRANSIENT),
        (errno.EIO, errors.EXIT_TRANSIENT),
    ],
)
def test_errno_decides_the_code_not_the_message(err, code):
    # The message holds words that a text matcher would have misread ("403", "timeout", ...).
    exc = OSError(err, "access denied 403 timeout NoSuchKey", "/mnt/vol/403-timeout/x")
    verdict = classify_storage(exc, "/mnt/vol/l1/0.parquet")
    assert verdict.exit_code == code
    assert "/mnt/vol/l1/0.parquet" in str(verdict)


def test_an_unexpected_exception_is_an_internal_error_with_one_line(capsys):
    def bug():
        raise ZeroDivisionError("secret-free detail")

    assert _guard(bug) == errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: internal failure: ZeroDivisionError: secret-free detail"
    ]


def test_secret_with_a_slash_in_a_url_is_masked(root):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result = run("0", "1", "--root", f"s3://AKIDEXAMPLE:{secret}@bucket/prefix")
    output = result.stdout + result.stderr
    assert secret not in output and "K7MDENG" not in output and "bPxRfiCY" not in output
    assert result.returncode != 0 and "***@" in error_line(result)
    assert errors.redact(f"s3://AKID:{secret}@b/k and oss://x:y/z@b/k") == (
        "s3://***@b/k and oss://***@b/k"
    )


def test_a_bug_is_an_internal_error_through_the_command_line(root):
    """An op whose code is wrong (tests/ops_distinct.py's BROKEN) fails the pod with 70 and one
    line; nothing is published."""
    here = str(REPO / "tests")
    result = run(
        "0", "1", "--root", str(root), "--op", "ops_distinct:BROKEN", env={"PYTHONPATH": here}
    )
    assert result.returncode == errors.EXIT_INTERNAL, result.stderr
    assert (
        error_line(result)
        == "error: internal failure: ZeroDivisionError: integer division or modulo by zero"
    )
    assert published(root) == []
