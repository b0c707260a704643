# CryptoSatX. Quick start: `make run` (the product, embedded) and `make test` (the whole suite).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MANAGE := $(PY) manage.py

.PHONY: run up test lint format bench clean help

help:
	@echo "make run    set up, then run the product (web + worker + beat in one process, replaying the sample)"
	@echo "make test   set up, then run ruff and the whole test suite (PostgreSQL and Redis on 127.0.0.1)"
	@echo "make up     the distributed topology (needs DATABASE_URL and CELERY_BROKER_URL)"
	@echo "make bench  import benchmark (results in docs/BENCHMARKS.md)"

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
	  || { echo "CryptoSatX needs Python 3.11; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@touch $@

$(VENV)/.runtime: $(VENV)/.python-ok requirements.txt
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@

# Migrations, static files, the bundled sample (first run only) and the admin user (first run only).
prepare: $(VENV)/.runtime
	$(MANAGE) migrate --noinput
	$(MANAGE) sync_schedules
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) load_sample
	$(MANAGE) ensure_admin

run: prepare
	$(MANAGE) run_embedded

# The Procfile names bare commands (as the Docker image runs them): the venv's bin/ comes first.
up: $(VENV)/.runtime
	@test -n "$$DATABASE_URL" && test -n "$$CELERY_BROKER_URL" \
	  || { echo "make up needs DATABASE_URL and CELERY_BROKER_URL (see README: the two ways to run)"; exit 1; }
	@test -n "$$FLOWER_BASIC_AUTH" \
	  || { echo "make up needs FLOWER_BASIC_AUTH=user:password for Flower"; exit 1; }
	$(MAKE) prepare
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: $(VENV)/.dev
	$(PY) scripts/run_tests.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.dev
	$(PY) bench/bench_import.py

clean:
	rm -rf var/
