# The two commands of the README: `make run` (the whole local stack) and `make test` (what CI runs).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run test test-guarantees lint layers typecheck unit bench soak clean sdk37

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The whole local stack until Ctrl-C; `make run ARGS="--concurrency 4"` passes options to `dsimport up`.
run: install
	$(BIN)/dsimport up $(ARGS)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

# The layers of docs/ARCHITECTURE.md, written as import-linter contracts in pyproject.toml.
layers: install
	$(BIN)/lint-imports

# The contract suite runs today's SDK (mistralai 3.7.0) in its own cached environment, .cache/sdk-3.7.0: it cannot
# share .venv, which pins 2.5.0. The tests build it on first use; this builds it ahead (and fails if it cannot).
sdk37: install
	$(BIN)/python -m tests.contract.sdk_venv 3.7.0

# pytest sets up what the tests talk to by itself (a private Redis, a throwaway PostgreSQL cluster when its binaries
# are installed, Chromium for the browser test where it can install it): in the test session (tests/conftest.py)
# rather than in a target here, so that plain `pytest`, a single test file and .ci/guarantees.py get the same, and
# Chromium is only installed by a session that runs the browser test.
test: lint typecheck layers
	$(BIN)/pytest

# Mutation step: each exactly-once mechanism switched off in turn; its tests (tests/guarantees.toml) must then fail.
test-guarantees: install
	$(BIN)/python .ci/guarantees.py $(ARGS)

bench: install
	$(BIN)/python -m bench.run

# The long fault campaign (tests/faultsim): `make soak SEEDS=1-300`; one seed again: python -m tests.faultsim --seed N
SEEDS ?= 1-300
soak: install
	$(BIN)/python -m bench.soak --seeds $(SEEDS)

clean:
	rm -rf $(VENV) .cache .dsimport .pytest_cache .mypy_cache .ruff_cache
