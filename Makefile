# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	bash scripts/install-system-deps.sh
	touch $@

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
