"""The seed's final pod: `python3 merge.py 0 <number>` in the image's WORKDIR."""

from workload.cli import merge_main

raise SystemExit(merge_main(prog="merge.py"))
