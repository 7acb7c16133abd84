"""Rewrite the vendored Argo schemas from Argo's CRDs: `python -m workload.argo.schemas.vendor DIR`.

DIR holds argoproj.io_workflows.yaml and argoproj.io_workflowtemplates.yaml (Argo's full CRDs).
Each CRD's v1alpha1 openAPIV3Schema is written here as KIND.json.gz, with the prose
descriptions stripped (they are 90% of the bytes and the validator never reads them).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CRD_FILES = {
    "Workflow": "argoproj.io_workflows.yaml",
    "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml",
}


def strip(node):
    if isinstance(node, dict):
        return {
            k: strip(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def vendor(crd_dir: Path) -> None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for kind, name in CRD_FILES.items():
        crd = yaml.load((crd_dir / name).read_text(encoding="utf-8"), Loader=loader)
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
        schema = strip(version["schema"]["openAPIV3Schema"])
        data = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
        (HERE / f"{kind}.json.gz").write_bytes(gzip.compress(data, mtime=0))


if __name__ == "__main__":
    vendor(Path(sys.argv[1]))
