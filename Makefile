# The two commands a newcomer needs: `make run` and `make test`. Everything they install lives here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install lint bench demo-data sdl clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## Serve the gateway on 127.0.0.1:8000 with the embedded defaults (demo data generated if missing).
run: install
	$(BIN)/citygraph demo-data --if-missing
	$(BIN)/citygraph serve

## Lint, type-check and run every test (Python and Rego).
test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo-data: install
	$(BIN)/citygraph demo-data

sdl: install
	$(BIN)/citygraph sdl

## The benchmark (not a test): serves the gateway on the large data set and measures it.
bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
