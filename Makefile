PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-dev run run-cluster test test-browser lint format migrations-check bench bench-smoke soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install  ## migrate, load the demo, start Redis (embedded), the worker, the relay and daphne
	$(BIN)/python -m checkout_site.stack

run-cluster: install  ## the many-machine shape here: PostgreSQL, Redis, a broker, HAProxy (see docs/operations.md)
	$(BIN)/python -m checkout_site.cluster

test: install-dev  ## the whole suite on real Redis, a real worker and SQLite (no browser needed)
	$(BIN)/python -m pytest -m "not browser and not cluster" $(PYTEST_ARGS)

test-browser: install-dev  ## the browser tests: headless Chromium (/usr/bin/chromium) on the real stack
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations-check: install
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: install-dev  ## the checkout against bare Celery on this machine; writes bench/results.json and docs/performance.md
	$(BIN)/python -m bench
	$(BIN)/python -m bench.cpu_paths 200 --into bench/results.json
	$(BIN)/python -m bench.report

bench-smoke: install-dev  ## every benchmark phase for a few seconds; fails if something is broken
	$(BIN)/python -m bench --smoke

soak: install  ## many orders while workers are killed and Redis restarts, then the books checked
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .test-db.sqlite3* staticfiles
