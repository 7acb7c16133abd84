"""`python -m workload.merge <first> <count>`: the final pod under the seed's name (final.py)."""

from .command import exit_now
from .final import main

if __name__ == "__main__":
    exit_now(main(prog="python -m workload.merge"))
