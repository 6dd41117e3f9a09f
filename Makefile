# The two commands a newcomer needs: `make run` (the whole service on this machine) and
# `make test` (everything CI runs). Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
UV_VERSION := 0.13.8
# checkov lives in a venv of its own: it pins cachetools<6, the runtime needs cachetools 8.
CHECKOV_VENV := .venv-checkov
CHECKOV_LOCK := tools/checkov/requirements.lock
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat $(CHECKOV_LOCK) | sha1sum | cut -c1-12)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# The dashboard (web/): its own locked npm install, built by Vite into web/dist.
WEB_STAMP := web/node_modules/.installed-$(shell cat web/package-lock.json | sha1sum | cut -c1-12)
WEB_SOURCES := $(shell find web/src -type f) web/index.html web/vite.config.js web/package-lock.json
# The browser the dashboard's tests drive (Debian's package; Playwright's own downloads are not used).
CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)

.PHONY: help run test fuzz lint format bench load quality synth os-deps deps clean web browser screenshots

help:
	@echo "make run    - start the service locally (Postgres, Redis, API, WebSocket, paper brokers)"
	@echo "make test   - lint, type-check and run every test suite (what CI runs)"
	@echo "make fuzz   - contract fuzzing (schemathesis) against local mode at >= 5,000 cases"
	@echo "make lint   - ruff (lint + format check), mypy and the dependency rule (import-linter)"
	@echo "make bench  - run every benchmark, results in bench/results/*.json"
	@echo "make load   - open-loop load through local mode's HTTP API (bench/results/load.json)"
	@echo "make quality - routing quality against an oracle while brokers change (docs/quality.md)"
	@echo "make synth  - synthesise the CloudFormation templates with the pinned CDK CLI"
	@echo "make web    - build the dashboard (web/dist) from its locked npm install"

$(STAMP): pyproject.toml requirements.lock
	@command -v python3 >/dev/null || { echo "python3 >= 3.11 is required"; exit 1; }
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "python3 >= 3.11 is required"; exit 1; }
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python --require-hashes -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

$(CHECKOV_STAMP): $(CHECKOV_LOCK) | $(STAMP)
	test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(BIN)/uv pip sync -q --python $(CHECKOV_VENV)/bin/python --require-hashes $(CHECKOV_LOCK)
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $@

deps: $(STAMP) $(CHECKOV_STAMP)

# PostgreSQL and Redis server binaries from the OS: the tests start throwaway servers from them.
os-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing postgresql and redis-server with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null) \
		|| { echo "apt-get could not install postgresql redis-server"; exit 1; }; \
	else echo "missing OS packages: install postgresql and redis-server (e.g. sudo apt-get install postgresql redis-server)"; exit 1; fi

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node 20+): install nodejs and npm"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	rm -f web/node_modules/.installed-*
	touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html

# Re-takes docs/dashboard/*.png with the browser tests (docs/dashboard.md).
screenshots: $(STAMP) os-deps web browser
	DASHBOARD_SCREENSHOTS=docs/dashboard $(BIN)/pytest tests/dashboard -q

# Headless Chromium from the OS for the dashboard's browser tests (tests/dashboard).
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| { echo "apt-get could not install chromium chromium-driver"; exit 1; }; \
	else echo "missing OS package: install chromium (e.g. sudo apt-get install chromium chromium-driver)"; exit 1; fi

run: $(STAMP) os-deps web
	$(BIN)/order-router run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) $(CHECKOV_STAMP) os-deps web browser lint
	$(BIN)/pytest

# The contract-fuzzing suite at >= 5,000 cases (make test runs it at ~1,000); prints the count.
fuzz: $(STAMP) os-deps
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-500} $(BIN)/pytest tests/e2e/test_contract_fuzz.py -q -s

bench: $(STAMP) os-deps
	@set -e; for f in bench/*.py; do \
		name=$$(basename $$f .py); \
		case $$name in __init__|harness|quality|load|locust_mix) continue;; esac; \
		echo "== bench.$$name"; $(BIN)/python -m bench.$$name; \
	done

# Not part of `make bench`: minutes of open-loop traffic through `order-router run --workers N`
# (docs/capacity.md). LOAD_ARGS=--quick for short steps while developing.
load: $(STAMP) os-deps
	$(BIN)/python -m bench.load $(LOAD_ARGS)

# Not part of `make bench` (speed targets) nor `make test`: it measures decisions, not time,
# and redraws the charts committed in docs/quality/. About 2 minutes.
quality: $(STAMP) os-deps
	$(BIN)/python -m bench.quality

synth: $(STAMP) web
	test -d node_modules || npm ci --no-audit --no-fund
	$(BIN)/python -m infra.layer
	AWS_EC2_METADATA_DISABLED=true npx cdk synth --quiet

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules web/node_modules web/dist cdk.out build .mypy_cache .pytest_cache .ruff_cache
