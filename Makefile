# CryptoPulse. On a fresh machine `make up` or `make test` is the only command needed:
# each runs `setup` first, which installs what is missing and is quick when nothing is.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help setup up down status test test-unit test-integration test-cluster test-e2e test-web lint format bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## Install everything: .venv, Kafka + Spark connector jars, web app, Chromium
	@scripts/bootstrap.sh
	@$(BIN)/cryptopulse setup

up: setup ## Run the whole pipeline and the dashboard (Ctrl-C stops it)
	@$(BIN)/cryptopulse up $(ARGS)

down: ## Stop a pipeline started by `make up` in another terminal
	@$(BIN)/cryptopulse down

status: ## Show each component of the pipeline
	@$(BIN)/cryptopulse status

test: setup lint ## Lint, then every test: unit, integration (real Kafka/Spark), cluster (kills on a local cluster), web, e2e (real browser)
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS)
	@$(BIN)/pytest tests/integration $(PYTEST_ARGS)
	@$(BIN)/pytest tests/cluster $(PYTEST_ARGS)
	@if [ -f web/package.json ]; then (cd web && npm test --silent); fi
	@if compgen -G "tests/e2e/test_*.py" >/dev/null; then $(BIN)/pytest tests/e2e $(PYTEST_ARGS); fi

test-unit: setup ## Fast tests, no servers
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: setup ## Tests against a real Kafka broker and Spark
	@$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-cluster: setup ## The local cluster (3 brokers, Spark master + 2 workers, 2 API replicas): kills under load
	@$(BIN)/pytest tests/cluster $(PYTEST_ARGS)

test-e2e: setup ## Whole pipeline in headless Chromium
	@$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test-web: setup ## Web unit tests (Vitest)
	@cd web && npm test

lint: setup ## ruff, mypy, and the web app's eslint + tsc
	@$(BIN)/ruff check cryptopulse tests bench
	@$(BIN)/ruff format --check cryptopulse tests bench
	@$(BIN)/mypy
	@if [ -f web/package.json ]; then (cd web && npm run lint --silent); fi

format: setup ## Apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix cryptopulse tests bench
	@$(BIN)/ruff format cryptopulse tests bench

bench: setup ## Run the benchmarks (results in docs/PERFORMANCE.md)
	@for b in bench/bench_*.py; do echo "==> $$b"; $(BIN)/python $$b; done
