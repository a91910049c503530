# Entry points. Each first installs what it needs: the system packages
# (scripts/install-system-deps, a no-op when all are there) and .venv.
#   make run   ARGS=...   ingestro dev: the whole system on private servers
#   make test  ARGS=...   mypy, then pytest (ARGS go to pytest)
#   make bench ARGS=...   the benchmarks

PYTHON ?= python3
VENV := .venv
# Touched once .venv holds what pyproject.toml asks for; older than it = reinstall.
VENV_STAMP := $(VENV)/.installed

.PHONY: deps venv run test typecheck bench

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

test: typecheck
	$(VENV)/bin/python -m pytest $(ARGS)

typecheck: venv
	$(VENV)/bin/mypy

bench: venv
	$(VENV)/bin/python -m ingestro.bench $(ARGS)
