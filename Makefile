# cryptotrade — one command per tool; CI runs the same ones (`.ci/run` calls `make test`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: help install run test test-full lint format type bench ui clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

# pip's notes about absent local mirrors are noise; real errors still fail the target.
PIP := set -o pipefail; $(PY) -m pip install --quiet --disable-pip-version-check
QUIET := 2>&1 | { grep -v 'is ignored: it is neither' || true; }

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	@# torch first: the local CPU wheel, so nothing later pulls a CUDA build
	$(PIP) torch==$(TORCH_VERSION) $(QUIET)
	$(PIP) -e '.[dev]' $(QUIET)
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with CPU torch and the package (+dev extras); fast when done

run: install ## Run the default pipeline (synthetic market -> PPO -> test-split report)
	$(PY) -m cryptotrade.run $(ARGS)

# The fast suite runs on both cores (pytest-xdist); the slow one serially (its Ray clusters,
# servers and training runs use the cores themselves).
test: install ## Fast test suite (< 3 min on 2 cores)
	$(PY) -m pytest -q -n 2 $(ARGS)

test-full: install ## Every test, slow ones included
	$(PY) -m pytest -q -m '' $(ARGS)

lint: install ## ruff check
	$(VENV)/bin/ruff check .

format: install ## ruff format + import sorting
	$(VENV)/bin/ruff check --fix --select I .
	$(VENV)/bin/ruff format .

type: install ## mypy
	$(VENV)/bin/mypy

bench: install ## Benchmarks vs peer tools; tables go to experiments/benchmarks/README.md
	$(PIP) -e '.[dev,bench]' $(QUIET)
	@# gym-trading-env pins ccxt 3; only its env module is benchmarked, so skip its pins
	$(PIP) --no-deps gym-trading-env==0.3.5 $(QUIET)
	$(PY) -m experiments.benchmarks $(ARGS)

PORT ?= 5000
ui: install ## MLflow UI on the local store (http://127.0.0.1:$(PORT); make ui PORT=5001)
	@# no usage telemetry to MLflow's servers unless the user asks (as `import cryptotrade` does)
	MLFLOW_DISABLE_TELEMETRY=$${MLFLOW_DISABLE_TELEMETRY:-true} $(VENV)/bin/mlflow ui --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" --host 127.0.0.1 --port $(PORT)

clean: ## Remove outputs and .cache (numba, prepared datasets, downloads); keeps .venv, mlflow.db
	rm -rf outputs multirun .cache .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
