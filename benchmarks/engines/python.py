"""The floor of a pod process: the interpreter importing pyarrow.parquet and nothing else."""

from __future__ import annotations

from . import Spec, Work, engine


@engine("import_pyarrow", "pod_process", writes=False)
def import_pyarrow(spec: Spec) -> Work:
    import subprocess
    import sys

    command = [sys.executable, "-c", "import pyarrow.parquet"]

    def work():
        subprocess.run(command, check=True)
        return {"outputs": []}

    return work
