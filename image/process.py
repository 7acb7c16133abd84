"""The seed's level pod: `python3 process.py <file_number> <level>` in the image's WORKDIR."""

from workload.command import exit_now
from workload.process import main

exit_now(main(prog="process.py"))
