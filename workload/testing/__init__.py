"""Test support that tests and benchmarks import as modules (the `test` extra installs what it
needs): the OSS emulator, the fault-injecting proxy, the DuckDB oracle."""
