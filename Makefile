# Two commands do all set-up on a fresh machine with only Python (3.11, 3.12 or 3.13):
#   make dev   - the whole system on embedded defaults (see README.md and docs/operations.md)
#   make test  - lint, type checks and every test
# The project supports Python 3.11 to 3.13 (pyproject.toml). PYTHON is the first of python3.13,
# python3.12, python3.11 and python3 that runs and is one of those (a pyenv shim may exist and
# not run); set PYTHON=... to choose, and VENV=... to keep a second environment beside .venv.
IN_RANGE := 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'
PYTHON ?= $(firstword $(foreach python,python3.13 python3.12 python3.11 python3,$(shell $(python) -c $(IN_RANGE) >/dev/null 2>&1 && command -v $(python))))
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev test fuzz lint format bench clean

$(INSTALLED): pyproject.toml
	@if ! "$(PYTHON)" -c $(IN_RANGE) 2>/dev/null; then echo "Badges needs Python 3.11, 3.12 or 3.13$(if $(PYTHON),: PYTHON=$(PYTHON) is not one,: none of python3.13, python3.12, python3.11 or python3 is one). Install one, or set PYTHON=/path/to/python3.x." >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

dev: $(INSTALLED)
	$(BIN)/python -m badges.cli.dev

lint: $(INSTALLED)
	$(BIN)/ruff check badges tests bench
	$(BIN)/ruff format --check badges tests bench
	$(BIN)/mypy badges/domain badges/messages badges/workflows badges/temporal
	$(BIN)/lint-imports --no-cache --no-logo  # the layering (pyproject.toml, docs/architecture.md)
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_layering.py  # no SQL outside db/; temporalio.client only in temporal/

test: lint
	$(BIN)/pytest

# The generated-input tests (`-m fuzz`) at length: `make test` runs them with few examples. docs/operations.md, "Tests".
fuzz: $(INSTALLED)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:cacheprovider -m fuzz

format: $(INSTALLED)
	$(BIN)/ruff check --fix badges tests bench
	$(BIN)/ruff format badges tests bench

bench: $(INSTALLED)
	$(BIN)/python -m bench.all  # every benchmark, one report: bench/results-<date>.json (README, "Benchmark")

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
