# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: setup demo test test-fast lint bench lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: setup  ## simulate a small company and ingest its last days (SQLite, ./.crm/landing, local Prefect)
	$(BIN)/crm demo

test: setup  ## every test, SQLite and PostgreSQL (CRM_TEST_POSTGRES_URL), S3 via moto
	$(BIN)/pytest

lint: setup  ## ruff and the import-linter layer contracts (also run by `make test`)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

test-fast: setup  ## pure-logic tests only
	$(BIN)/pytest tests/unit

bench: setup  ## simulate + ingest and dispatch benchmarks (see benchmarks/README.md)
	$(BIN)/python benchmarks/bench_ingest.py --customers 100000
	$(BIN)/python benchmarks/bench_dispatch.py --messages 100000

lock:  ## re-pin every dependency from a clean venv (review the diff)
	rm -rf /tmp/crm-lock && $(PYTHON) -m venv /tmp/crm-lock
	/tmp/crm-lock/bin/pip install --quiet --upgrade "pip>=24"
	/tmp/crm-lock/bin/pip install --quiet -e '.[test]' "prefect==3.8.8" "fastapi==0.150.0" "sqlalchemy==2.0.58"
	/tmp/crm-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .crm .pytest_cache
