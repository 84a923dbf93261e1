# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# The versions the tests passed with, for every dependency (test tools, pip and the build
# backend too): installs never take whatever is newest that day. Refreshed on purpose with
# `make lock`; pyproject.toml keeps loose ranges for people who pip install Tasky.
LOCK := requirements/constraints.txt
# In the environment, not as -c: pip then applies it to the isolated build of Tasky as well.
PIP := PIP_CONSTRAINT=$(abspath $(LOCK)) $(BIN)/python -m pip

.PHONY: run test lint lock bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install --quiet -e '.[test,bench]'
	bash scripts/install-system-deps.sh
	touch $@

# Resolve the newest versions pyproject.toml allows (every extra) into $(LOCK), for any
# platform and Python >= 3.11. Then run `make test` and commit the file with what it changed.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra test --extra postgres --extra bench \
		--universal --python-version 3.11 --upgrade --quiet --output-file $(LOCK)

run: $(STAMP)
	$(BIN)/tasky serve --data ./tasky-data

lint: $(TEST_STAMP)
	$(BIN)/ruff check tasky tests bench
	$(BIN)/ruff format --check tasky tests bench
	$(BIN)/mypy

test: $(TEST_STAMP)
	$(BIN)/ruff check tasky tests bench
	$(BIN)/ruff format --check tasky tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python bench/run.py

bench-smoke: $(TEST_STAMP)
	$(BIN)/python bench/run.py --smoke

clean:
	rm -rf $(VENV) tasky-data .pytest_cache .mypy_cache .ruff_cache
