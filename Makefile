# Every target bootstraps .venv from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test lint demo bench docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The shared-budget tests start a real redis-server on loopback: Debian's package, installed as
# root on a fresh machine (CI runs as root); elsewhere install it yourself (apt/brew install redis).
.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is needed by the tests: install it (Debian: apt-get install redis-server)" >&2; exit 1; fi; }

test: $(STAMP) redis-server
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check airflow_provider_aigw tests example_dags
	$(BIN)/mypy

# The Sphinx site (docs/ -> docs/_build/html), warnings as errors; installs the docs extra when missing.
# Autodoc imports the provider offline (AIRFLOW_HOME under docs/_build, see docs/conf.py).
docs: $(STAMP)
	@$(BIN)/python -c "import sphinx" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	$(BIN)/python -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# Emulator -> `airflow dags test aigw_archive_logs` -> ./demo-output/, with a summary (about 30 s).
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Benchmarks (not tests): emulator subprocess, provider vs official SDK; writes benchmarks/RESULTS.md
# and benchmarks/throughput_vs_latency.png. About 10 minutes on 2 cores. BENCH_ARGS="--rounds 1" is quicker.
bench: $(STAMP) redis-server
	@$(BIN)/python -c "import matplotlib, cloudflare, psutil, limits" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks --cmdline "make bench$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" $(BENCH_ARGS)

# The suite on several Airflow releases, one venv each in .venv-matrix/<version>/ (reused while
# pyproject.toml is unchanged); prints a pass/fail table. AIRFLOW_VERSIONS="2.11.2" picks releases.
AIRFLOW_VERSIONS ?= 2.11.2 3.0.6 3.1.8 3.3.2
.PHONY: test-matrix
test-matrix: redis-server
	AIRFLOW_VERSIONS="$(AIRFLOW_VERSIONS)" PYTHON="$(PYTHON)" PYTEST_ARGS="$(PYTEST_ARGS)" scripts/test_matrix.sh

# Long reliability cases, not part of `make test` (tests/soak/, collected only with AIGW_SOAK=1):
# a 1,000,000-log export (exact, flat memory) and 10 concurrent exports under one request budget.
# Prints times, request counts and peak RSS. About 2-3 minutes on 2 cores.
.PHONY: soak
soak: $(STAMP)
	AIGW_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/soak $(PYTEST_ARGS)

# aigw_multi_gateway_export under a real CeleryExecutor: scheduler, api-server, dag-processor, two
# Celery workers and redis-server (broker + shared request budget) on loopback, against the emulator's
# scaled rule; prints the per-worker split, combined rate, 429 count and exact id sets. About 3 minutes
# on 2 cores (Airflow 3 only; not part of `make test`).
.PHONY: test-celery
test-celery: $(STAMP) redis-server
	@$(BIN)/python -c "import airflow.providers.celery.executors.celery_executor" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,test-celery]'
	$(BIN)/python scripts/test_celery.py

# The asset watcher end to end (scripts/test_events.py): dag-processor, scheduler and triggerer of
# Airflow 3.3 (SQLite) and the emulator on loopback; matching, non-matching and late logs arrive
# while the triggerer is SIGKILLed and restarted 3 times; the ids the asset events (and the DAG runs
# consuming them) carry must equal the emulator's matching logs, repeats within the documented bound.
# About 4 minutes on 2 cores (Airflow 3.3 only; not part of `make test`).
.PHONY: test-events
test-events: $(STAMP)
	$(BIN)/python scripts/test_events.py

# Browser test of the connection form and its Test button (tests/ui/, collected only with AIGW_UI=1):
# Airflow's api-server and the emulator on loopback, Debian's chromium driven headless by Playwright
# (no browser download). Screenshots go to docs/screenshots/. Installs chromium with apt-get (root)
# when /usr/bin/chromium is missing.
.PHONY: test-ui
test-ui: $(STAMP)
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,ui-test]'
	AIGW_UI=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui $(PYTEST_ARGS)

# The README's install section, run verbatim in a fresh clone: a new venv, Airflow, the provider
# from a built wheel, the example DAGs, the emulator and one archive run under `airflow dags test`.
.PHONY: test-install
test-install:
	scripts/check_install.sh
