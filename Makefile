# errorsink: `make run` starts the whole stack, `make test` runs the whole suite.
# Both create the environment in .venv from uv.lock first; nothing else needs installing.

VENV := .venv
BIN := $(VENV)/bin
PYTHON312 ?= $(firstword $(shell command -v python3.12) $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(wildcard /usr/bin/python3.12))
UV_VERSION := 0.13.9
PORT ?= 8000

# The command line of every process is defined once, in devstack/processes.py; compose.yaml
# runs the same ones (a test checks it).

.PHONY: install run test test-fast bench faults lint format docs clean print-entrypoints

$(BIN)/uv:
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (pyenv install 3.12, or set PYTHON312=/path/to/python3.12)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python
	@touch $@

install: $(VENV)/.synced

run: install
	$(BIN)/python -m devstack run --port $(PORT)

# Two pytest-xdist workers, each with its own test database, Redis database and live stack; a
# module's tests stay on one worker (its worker process and browser are started once).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The tests marked pure: no PostgreSQL, Redis or browser, nothing started; seconds.
test-fast: install
	$(BIN)/python -m pytest --no-services $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

# The fault suite on its own embedded PostgreSQL and Redis (it kills and stops them): counts of
# items pushed, stored, dead-lettered, lost and duplicated per scenario. `make test` runs the
# short form (tests/test_faults.py).
faults: install
	$(BIN)/python -m faults

# The documentation site (docs/, mkdocs.yml) into site/; strict: a broken link fails it.
docs: install
	$(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	-$(BIN)/python -m devstack clean
	rm -rf $(VENV) staticfiles site

print-entrypoints: install
	@$(BIN)/python -m devstack entrypoints --port $(PORT)
