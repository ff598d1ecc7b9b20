# The two set-up commands of the README. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
CRM := $(VENV)/bin/crm

.PHONY: run test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Serve the app on SQLite (instance/crm.db) with the demo app and its sample data (idempotent).
run: $(STAMP)
	$(CRM) init --admin-password admin
	$(CRM) preset import sales_pipeline --with-sample-data --yes
	$(CRM) run --host 127.0.0.1 --port 5000

# The whole test suite, on SQLite and then on PostgreSQL.
test: $(STAMP)
	scripts/run-tests

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# Benchmarks (not part of the suite): each prints ratios measured in one run.
bench: $(STAMP)
	$(VENV)/bin/python -m bench.migrations
	$(VENV)/bin/python -m bench.records_crud
	$(VENV)/bin/python -m bench.records_import
	$(VENV)/bin/python -m bench.workflows
	$(VENV)/bin/python -m bench.pages
