"""Fixtures only; test support lives in workload.testing."""

from __future__ import annotations

import os

import pytest

from workload.testing.pods import OURS

# The environment as the test run started, before _clean_env: real-storage tests read it.
ORIGINAL_ENV = dict(os.environ)


def pytest_collection_modifyitems(items):
    """tests/unit is the fast layer: `pytest -m unit` (make test-fast) runs it alone."""
    for item in items:
        if "unit" in item.path.parts:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Tests choose their own roots and credentials; nothing leaks in from the shell."""
    for name in list(os.environ):
        if name.startswith(OURS):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def original_env() -> dict:
    return ORIGINAL_ENV
