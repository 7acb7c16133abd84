"""workload: a multi-level MapReduce over Parquet shards, one pod per shard group.

generate -> process (level by level) -> final -> verify; see README.md.
"""

__version__ = "0.1.0"

# The image every pod runs, as the manifests and Batch files name it unless told otherwise.
DEFAULT_IMAGE = f"registry.example.com/workload:{__version__}"
