# Nectar: `make run` starts everything with the demo data; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime.stamp
DEV_STAMP := $(VENV)/.dev.stamp
HOST ?= 127.0.0.1
PORT ?= 8000
COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url

# Every target here is a development task: generated local secrets and the embedded database are
# allowed (a production process without SECRET_KEY, NECTAR_ENCRYPTION_KEY or DATABASE_URL refuses to start).
export NECTAR_DEV ?= 1

.PHONY: run test test-llm install install-dev lock migrate seed lint format bench services clean

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Runtime only (what production installs); the test and lint tools come on top for make test.
$(RUNTIME_STAMP): requirements/prod.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/prod.txt
	@touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements/dev.txt
	$(PY) -m pip install --quiet -r requirements/prod.txt -r requirements/dev.txt
	@touch $@

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

# Recompile the locks after editing requirements/base.in or requirements/dev.in.
lock: install-dev
	$(COMPILE) --output-file requirements/prod.txt requirements/base.in
	$(COMPILE) --output-file requirements/dev.txt requirements/dev.in

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo --max-age-days 30

run: seed
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

services:
	bash scripts/ensure-services.sh

test: install-dev services
	bash scripts/run-tests.sh

# The tests against a real local model (scripts/llm-server.sh starts it; the first time it builds
# llama.cpp, 15-25 minutes on two cores). Not part of `make test`: see README.
test-llm: install-dev services
	$(PY) -m pytest -m llm tests/llm

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: seed
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache artifacts
