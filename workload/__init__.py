"""workload: a multi-level MapReduce over Parquet shards, one pod per shard group.

generate -> process (level by level) -> final -> verify; see README.md.
"""

__version__ = "0.1.0"
