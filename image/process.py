"""The seed's level pod: `python3 process.py <file_number> <level>` in the image's WORKDIR."""

from workload.cli import exit_now, process_main

exit_now(process_main(prog="process.py"))
