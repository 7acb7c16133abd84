"""The seed's level pod: `python3 process.py <file_number> <level>` in the image's WORKDIR."""

from workload.cli import process_main

raise SystemExit(process_main(prog="process.py"))
