"""Threads from the pod's CPU limit (cgroup quota, affinity), not the node's cores."""

from __future__ import annotations

import os

from workload import workers


def test_a_cgroup_v2_quota_limits_the_threads(tmp_path, monkeypatch):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs
    monkeypatch.setattr(workers, "CGROUP", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert workers.cpu_limit() == 2 and workers.cpu_threads(4) == 2


def test_a_cgroup_v1_quota_and_no_quota(tmp_path, monkeypatch):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu/cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu/cpu.cfs_period_us").write_text("100000\n")
    monkeypatch.setattr(workers, "CGROUP", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert workers.cpu_threads(4) == 1
    (tmp_path / "cpu/cpu.cfs_quota_us").write_text("-1\n")  # unlimited: the affinity decides
    assert workers.cpu_limit() == 8


def test_the_affinity_mask_limits_too(tmp_path, monkeypatch):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    monkeypatch.setattr(workers, "CGROUP", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert workers.cpu_threads(4) == 1
