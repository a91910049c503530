# Entry points. Each first installs what it needs: the system packages
# (scripts/install-system-deps, a no-op when all are there) and .venv.
#   make run   ARGS=...   ingestro dev: the whole system on private servers
#   make test  ARGS=...   the checks (ruff, import-linter, mypy), then pytest (ARGS go to pytest)
#   make check            the checks alone
#   make bench ARGS=...   the benchmarks

PYTHON ?= python3
VENV := .venv
# Touched once .venv holds what pyproject.toml asks for; older than it = reinstall.
VENV_STAMP := $(VENV)/.installed

.PHONY: deps venv run test check typecheck bench

deps:
	@PYTHON='$(PYTHON)' scripts/install-system-deps

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml | deps
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "Ingestro needs Python >= 3.11, but $(PYTHON) is $$($(PYTHON) -V 2>&1)." \
			"Choose another with e.g. 'make PYTHON=python3.12 ...'." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

run: venv
	$(VENV)/bin/ingestro dev $(ARGS)

test: check
	$(VENV)/bin/python -m pytest $(ARGS)

# Lint and format (ruff), the layers (import-linter: see [tool.importlinter] in pyproject.toml), types (mypy --strict).
check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

typecheck: venv
	$(VENV)/bin/mypy

bench: venv
	$(VENV)/bin/python -m ingestro.devtools.bench $(ARGS)
