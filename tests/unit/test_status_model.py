"""The node model of a finished run's Workflow object (workload/argo/status.py) against what
issue 9 measured from Argo's NodeStatus: about 1.2 KB raw and 100 B compressed per node, so
that one Workflow holds about 5k pods before it passes MAX_WORKFLOW_SIZE."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from workload import layout
from workload.argo import status

pytestmark = pytest.mark.unit


def pods(files: int, fan_in: int, final_fan_in: int = 32) -> list[int]:
    plan = layout.plan(files, fan_in, final_fan_in=final_fan_in)
    return [plan.pods(level) for level in range(1, plan.levels + 1)] + [1]


def test_the_seed_fits_and_ten_thousand_files_at_fan_in_two_do_not():
    seed = status.size(pods(128, 2), fan_in=2, form="steps", spec_bytes=20_000)
    assert seed.nodes == 1 + 3 + 2 * 97  # main, 3 step groups, a Retry and a Pod per pod
    assert seed.fits
    big = status.size(pods(10_000, 2), fan_in=2, form="steps", spec_bytes=20_000)
    assert 80 <= big.compressed_bytes / big.nodes <= 130
    assert 900 <= big.raw_bytes / big.nodes <= 1500
    assert not big.fits and big.total_bytes > status.MAX_WORKFLOW_SIZE


def test_nodes_are_what_the_controller_compresses():
    shape = pods(8, 2, final_fan_in=2)  # 8 -> 4 -> 2 -> result
    listed = status.nodes(shape, fan_in=2, form="dag")
    assert [n["type"] for n in listed].count("Pod") == 4 + 2 + 1 and listed[0]["type"] == "DAG"
    retry = next(n for n in listed if n["type"] == "Retry")
    pod = next(n for n in listed if n["id"] == retry["children"][0])
    assert pod["outputs"] == retry["outputs"]  # a pod's outputs are held twice
    got = status.size(shape, fan_in=2, form="dag", spec_bytes=0)
    raw = json.dumps({n["id"]: n for n in listed}, separators=(",", ":")).encode()
    assert got.raw_bytes == len(raw)
    assert abs(got.compressed_bytes - len(base64.b64encode(gzip.compress(raw)))) < 64


def test_retries_add_pod_nodes():
    once = status.size(pods(64, 2), fan_in=2, form="steps", spec_bytes=0)
    twice = status.size(pods(64, 2), fan_in=2, form="steps", spec_bytes=0, attempts=2.0)
    assert twice.nodes - once.nodes == sum(pods(64, 2))
