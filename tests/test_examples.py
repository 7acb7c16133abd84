"""The examples build what they say: the seed's Hera code, corrected, gives the seed's YAML."""

from __future__ import annotations

import runpy

import yaml

from workload.testing.pods import REPO


def _by_name(doc: dict) -> dict:
    """A manifest with its templates keyed by name: Argo finds templates by name, in any order."""
    spec = {**doc["spec"], "templates": {t["name"]: t for t in doc["spec"]["templates"]}}
    return {**doc, "spec": spec}


def test_the_seeds_hera_code_corrected_builds_the_seeds_yaml():
    built = runpy.run_path(str(REPO / "examples" / "seed_004_hera.py"))["w"].to_dict()
    published = yaml.safe_load((REPO / "tests" / "fixtures" / "seed-004-argo.yaml").read_text())
    assert _by_name(built) == _by_name(published)
