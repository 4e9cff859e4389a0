# Two commands do all set-up on a fresh machine with only Python 3.11:
#   make dev   - the whole system on embedded defaults (see README)
#   make test  - lint, type checks and every test
# The project needs Python 3.11 exactly (pyproject.toml); prefer python3.11 where both exist.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev test lint format bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

dev: $(INSTALLED)
	$(BIN)/python -m badges.dev

lint: $(INSTALLED)
	$(BIN)/ruff check badges tests bench
	$(BIN)/ruff format --check badges tests bench
	$(BIN)/mypy badges/domain badges/workflows
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_layering.py  # no SQL outside badges/db/

test: lint
	$(BIN)/pytest

format: $(INSTALLED)
	$(BIN)/ruff check --fix badges tests bench
	$(BIN)/ruff format badges tests bench

bench: $(INSTALLED)
	$(BIN)/python -m bench.realtime

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
