# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: setup demo demo-stop test test-fast lint bench lock clean

# The demo's own Prefect server (its database under .prefect-demo/), left running after `make demo`.
DEMO_PORT ?= 4200
DEMO_PREFECT = PREFECT_HOME=$(CURDIR)/.prefect-demo PREFECT_API_URL=http://127.0.0.1:$(DEMO_PORT)/api

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: setup  ## simulate a small company, run several nights on the embedded default, leave a local Prefect UI up
	@curl -sf http://127.0.0.1:$(DEMO_PORT)/api/health >/dev/null \
	  || { echo "starting a local Prefect server on port $(DEMO_PORT) (make demo-stop ends it)"; \
	       $(DEMO_PREFECT) $(BIN)/prefect server start --background --host 127.0.0.1 --port $(DEMO_PORT) >/dev/null; }
	@for i in $$(seq 1 120); do curl -sf http://127.0.0.1:$(DEMO_PORT)/api/health >/dev/null && break; sleep 1; done; \
	  curl -sf http://127.0.0.1:$(DEMO_PORT)/api/health >/dev/null \
	  || { echo "the Prefect server did not start on port $(DEMO_PORT): see $(CURDIR)/.prefect-demo, or use DEMO_PORT=..."; exit 4; }
	$(DEMO_PREFECT) $(BIN)/crm demo
	@echo "reports: $(CURDIR)/.crm/reports; the Prefect server keeps running with the demo's nights (make demo-stop ends it)"

demo-stop:  ## stop the demo's Prefect server
	$(DEMO_PREFECT) $(BIN)/prefect server stop

# Three workers on two cores: many tests wait on a Prefect server, a subprocess or PostgreSQL (CI 19.1 -> 13.6 min).
PYTEST_WORKERS ?= 3
test: setup  ## every test, SQLite and PostgreSQL (CRM_TEST_POSTGRES_URL), S3 via moto; PYTEST_WORKERS processes
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder  # scenario files first (tests/conftest.py)

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
