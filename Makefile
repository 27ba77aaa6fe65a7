# The two commands a newcomer runs: `make demo` and `make test`.  Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's declared dependencies change.
$(STAMP): pyproject.toml | $(PY)
	@echo "==> installing kubevisor and its test dependencies into $(VENV)"
	@$(PY) -m pip install --quiet --upgrade pip >$(VENV)/install.log 2>&1 || true
	@$(PY) -m pip install --quiet -e '.[test]' >>$(VENV)/install.log 2>&1 \
		|| { tail -n 40 $(VENV)/install.log; echo "pip install failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) tools/demo.py

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	@echo "==> ruff"
	@$(VENV)/bin/ruff check kubevisor tests tools benchmarks examples
	@$(VENV)/bin/ruff format --check kubevisor tests tools benchmarks examples

typecheck: $(STAMP)
	@echo "==> mypy (strict on kubevisor/)"
	@$(VENV)/bin/mypy

pytest: $(STAMP)
	@echo "==> pytest"
	@$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	@$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
