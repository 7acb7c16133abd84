# The habits of this repository, one target each. `make help` lists them.
PY ?= .venv/bin/python

.PHONY: help install lint types test-fast test render validate bench-smoke check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install:  ## a venv with the package and every extra the tests need
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'

lint:  ## ruff check and ruff format --check
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

types:  ## mypy over the package
	$(PY) -m mypy

test-fast:  ## the unit layer: seconds
	$(PY) -m pytest -q -m unit

test:  ## everything, as CI runs it
	$(PY) -m pytest -q

render:  ## rewrite the golden manifests in manifests/
	$(PY) -m workload.argo render

validate:  ## the golden manifests against Argo's schemas and rules
	$(PY) -m workload.argo validate

bench-smoke:  ## every benchmark case and engine on tiny data (answers checked, no timings)
	$(PY) -m benchmarks run --scale smoke

check: lint types test  ## what CI runs
