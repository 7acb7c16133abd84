"""The seed's Hera code (shared/seeds/004, "Use SDK for Python to build workflows"), corrected so
that it runs and builds the seed's own YAML (tests/test_examples.py compares them, parsed).

As printed it does not run: `process-data = Container(...)` is not a Python name, `m.Volume` has
no `m`, `global_config` is never imported, and its steps have no withSequence (the YAML's do), so
it would start one pod per level. Fixed here, and nothing else changed: the same names, image,
arguments and expressions. `python examples/seed_004_hera.py` submits it to $ARGO_HOST with
$ARGO_TOKEN; importing it only builds it.
"""

from __future__ import annotations

import os

from hera.shared import global_config
from hera.workflows import Container, Parameter, Steps, Workflow
from hera.workflows import models as m

IMAGE = "argo-workflows-registry.cn-hangzhou.cr.aliyuncs.com/argo-workflows-demo/python:3.11-amd"
HALF = "{{=asInt(workflow.parameters.numbers)/2}}"

with Workflow(
    generate_name="process-data-",  # Data processing workflow
    entrypoint="main",
    volumes=[m.Volume(name="workdir", persistent_volume_claim={"claim_name": "pvc-oss"})],
    arguments=[Parameter(name="numbers", value="64")],
) as w:
    process_data = Container(  # process-data task definition
        name="process-data",
        inputs=[Parameter(name="file_number"), Parameter(name="level")],
        image=IMAGE,
        image_pull_policy="Always",
        command=["python3"],
        args=["process.py", "{{inputs.parameters.file_number}}", "{{inputs.parameters.level}}"],
        volume_mounts=[m.VolumeMount(name="workdir", mount_path="/mnt/vol")],
    )
    merge_data = Container(  # merge-data task definition
        name="merge-data",
        inputs=[Parameter(name="number")],
        image=IMAGE,
        image_pull_policy="Always",
        command=["python3"],
        args=["merge.py", "0", "{{inputs.parameters.number}}"],
        volume_mounts=[m.VolumeMount(name="workdir", mount_path="/mnt/vol")],
    )
    with Steps(name="main"):
        process_data(  # First level: 64 pods merge 128 files into 64.
            name="process-data-l1",
            arguments=[
                Parameter(name="file_number", value="{{item}}"),
                Parameter(name="level", value="1"),
            ],
            with_sequence=m.Sequence(count="{{workflow.parameters.numbers}}"),
        )
        process_data(  # Second level: 32 pods merge 64 files into 32, after the first.
            name="process-data-l2",
            arguments=[
                Parameter(name="file_number", value="{{item}}"),
                Parameter(name="level", value="2"),
            ],
            with_sequence=m.Sequence(count=HALF),
        )
        merge_data(  # Last level: one pod merges the 32 files, after the second.
            name="merge-data",
            arguments=[Parameter(name="number", value=HALF)],
        )

if __name__ == "__main__":
    global_config.host = os.environ[
        "ARGO_HOST"
    ]  # e.g. https://argo.<cluster>.<region>.alicontainer.com:2746
    global_config.token = os.environ["ARGO_TOKEN"]
    w.create()
