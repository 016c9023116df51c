PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` needs the service (`.[server]`); tests, lint and benchmarks also the dev tools.
SERVER := $(VENV)/.installed-server
STAMP := $(VENV)/.installed-dev
# The peers of bench section 9 (RQ, arq, a FastAPI + Celery template) in a venv of their own.
PEERS_VENV := bench/.peers-venv
PEERS := $(PEERS_VENV)/.installed

.PHONY: run test test-fast lint format unasync bench bench-quick bench-peers-venv clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(SERVER): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".[server]"
	touch $(SERVER)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".[server,dev]"
	touch $(SERVER) $(STAMP)

run: $(SERVER)  ## Redis, two workers and the API on http://127.0.0.1:8000
	$(BIN)/arrayq up --workers 2 --port 8000

test: $(STAMP)  ## the whole suite: unit, integration (real Redis, workers, API, S3 server), slow
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unasync: $(STAMP)  ## client/_client.py (the sync client) from client/_async.py
	$(BIN)/python -m arrayq.client._unasync

$(PEERS): bench/peers-requirements.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -r bench/peers-requirements.txt
	touch $(PEERS)

bench-peers-venv: $(PEERS)

bench: $(STAMP) $(PEERS)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) $(PEERS_VENV) .arrayq .pytest_cache .ruff_cache
