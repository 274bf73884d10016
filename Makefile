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

## Lint, format check, layering contracts, complexity, then every test on PostgreSQL and Redis.
test: $(VENV)/.dev-installed lint
	$(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# No function in services/ or shared/ above cyclomatic complexity 10 (radon grade C or worse).
	@out="$$($(BIN)/radon cc --min C --no-assert services shared)"; if [ -n "$$out" ]; then echo "$$out"; echo "radon: functions above complexity 10"; exit 1; fi

unit: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit

## The benchmark (README, "Benchmark"): production-like stack, 100,000 requisitions, 1,000,000 transfers,
## every stage; writes load_tests/reports/bench-<date>.json and .md. Extra options: make bench BENCH_ARGS='...'
bench: $(VENV)/.dev-installed
	$(BIN)/python -m load_tests.bench $(BENCH_ARGS)

## The benchmark's few-second smoke run (what tests/e2e/test_bench_smoke.py runs); reports under var/bench/.
bench-smoke: $(VENV)/.dev-installed
	$(BIN)/python -m load_tests.bench --smoke --out var/bench/reports

## Fault runs (README, "Fault runs"): the whole stack on its own PostgreSQL and Redis under a seeded fault
## schedule, then the invariants; exits 1 on a violation. The long run: 20 seeds of 10 minutes (about 4 hours).
## Shorter: make chaos CHAOS_SEEDS=1..3 CHAOS_MINUTES=1; more options: CHAOS_ARGS='--clients 6 --out DIR'.
CHAOS_SEEDS ?= 1..20
CHAOS_MINUTES ?= 10
.PHONY: chaos
chaos: $(VENV)/.dev-installed
	$(BIN)/python -m pettycash chaos --seeds $(CHAOS_SEEDS) --minutes $(CHAOS_MINUTES) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
