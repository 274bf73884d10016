# The two commands: `make run` (the whole system) and `make test` (every check and test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint unit clean bench bench-smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

## Migrate, seed demo data and run every process until Ctrl-C (embedded defaults unless URLs are set).
run: $(VENV)/.run-installed
	$(BIN)/pettycash run

## Lint, format check, layering contracts, then every test on PostgreSQL and Redis.
test: $(VENV)/.dev-installed lint
	$(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

unit: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit

## The benchmark (README, "Benchmark"): production-like stack, 100,000 requisitions, 1,000,000 transfers,
## every stage; writes load_tests/reports/bench-<date>.json and .md. Extra options: make bench BENCH_ARGS='...'
bench: $(VENV)/.dev-installed
	$(BIN)/python -m load_tests.bench $(BENCH_ARGS)

## The benchmark's few-second smoke run (what tests/e2e/test_bench_smoke.py runs); reports under var/bench/.
bench-smoke: $(VENV)/.dev-installed
	$(BIN)/python -m load_tests.bench --smoke --out var/bench/reports

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
