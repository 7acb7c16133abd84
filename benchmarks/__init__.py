"""Benchmarks of workload's pods and whole job against DuckDB, Polars and a physical copy.

    python -m benchmarks run --scale smoke|default|large    measure, check, write results/
    python -m benchmarks report                             rebuild results.md and plots

harness (the parent: settings, fresh processes, alternation, checks, S3 counts, CSV), child (one
engine of one case, timed, one JSON line), engines/ (one file per engine, one registry), data
(scales, cached inputs), checks (answers, outside the timing), report (tables and plots).
"""
