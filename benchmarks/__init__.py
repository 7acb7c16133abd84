"""Benchmarks of workload's pods and whole job against DuckDB, Polars and a physical copy.

    python -m benchmarks run --scale small|default|large    measure, check, write results/
    python -m benchmarks report                             rebuild results.md and plots

Modules: settings (BENCH_* settings), data (seeded inputs per scale, cached), case (the child:
one engine of one case, timed, one JSON line), checks (answers, outside the timing), run (the
parent: scheduling, CSV), s3 (moto behind a counting proxy), report (tables and plots).
"""
