# churnops: `make run` sets up, trains if there is no champion, and serves the API and the app; `make test` sets up,
# lints and runs every test. Both create their own virtualenv from the pinned constraints.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := dev,spark,dashboard,flows,dvc
STAMP := $(VENV)/.installed
# Tests at once in `make test` (its parallel phase); the machines here have 2 cores.
TEST_WORKERS ?= 2
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true

.PHONY: help setup system-deps run train serve test test-fast lint format bench lock clean

help:
	@echo "make run    - set up, train on the bundled data if no champion exists, serve the API and the app"
	@echo "make test   - set up, lint, run the whole test suite"
	@echo "make lint   - ruff (lint + format check) and mypy"
	@echo "make bench  - run the benchmarks under bench/ (slow)"
	@echo "make lock   - re-pin constraints.txt after changing dependencies"

system-deps:
	@# Spark needs a Java runtime; install one from Debian only when missing and we may.
	@if ! command -v java >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "warning: no java found; Spark tests will fail (install a JRE 17)" >&2; fi; \
	fi
	@# The browser tests drive Debian's Chromium through Playwright (no browser download).
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: no chromium found; the browser tests will fail (apt-get install chromium)" >&2; fi; \
	fi
	@# promtool (Debian's prometheus) checks the alert rules and the exported metric names.
	@if ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	  else echo "warning: no promtool found; the alert-rule tests will fail (apt-get install prometheus)" >&2; fi; \
	fi
	@# gcc builds the serving tree walk ahead of time (numba.pycc): workers then never load numba.
	@if ! command -v cc >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; \
	  else echo "warning: no C compiler; the API will run its tree walk with numba's JIT" >&2; fi; \
	fi
	@# docker-compose (no engine needed) lets the tests validate deploy/compose.yml; best effort.
	@if ! command -v docker-compose >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null 2>&1 \
	    || echo "note: docker-compose not installed; the compose validation test will skip" >&2; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "churnops needs Python 3.11+")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
	@# Compile bytecode at install time: uv does not, and with PYTHONDONTWRITEBYTECODE=1 (set in
	@# these shells and the image) every process would compile mlflow, sklearn, ... from source
	@# again (importing them took 9.7 s instead of 4.6 s here).
	@$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: system-deps $(STAMP)
	@# The tree walk compiled ahead of time (~10 s, once per change of the walk or numpy).
	@$(BIN)/python -m churnops.modeling.treewalk_aot --if-missing
	@# churnops itself is installed editable, so --compile-bytecode above skips it: with
	@# PYTHONDONTWRITEBYTECODE=1 every command would compile its modules again (~0.14 s). A
	@# source edited later is recompiled in memory (the .pyc records the source's mtime).
	@$(BIN)/python -m compileall -q src

run: setup
	$(BIN)/churnops train --if-no-champion
	@# The API and the app together; Ctrl-C stops both (and everything they started).
	$(BIN)/churnops app --with-api

train: setup
	$(BIN)/churnops train

serve: setup
	$(BIN)/churnops serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: lint
	@# Two phases: every test that asserts no time runs TEST_WORKERS at once (pytest-xdist, one
	@# test file per worker so a file's module fixtures are built once), then those that assert a
	@# time or a speed (marked serial) run alone. Either failing fails the target; pytest exits 5
	@# when it collects no test: that is a failure here, never a pass.
	status=0; $(BIN)/pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m "not serial" \
	  --durations=15 tests || status=$$?; \
	  if [ $$status -eq 5 ]; then echo "error: no tests were collected" >&2; fi; \
	  serial=0; $(BIN)/pytest -p no:cacheprovider -m serial --durations=5 tests || serial=$$?; \
	  if [ $$serial -eq 5 ]; then echo "error: no serial tests were collected" >&2; fi; \
	  if [ $$status -eq 0 ]; then status=$$serial; fi; exit $$status

test-fast: setup
	$(BIN)/pytest -q -m "not slow and not spark" tests

bench: setup
	@# bench/serve.py drives the servers with wrk (Debian package); install it when missing.
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	fi
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --extra dashboard --extra flows --extra dvc \
	  --python-version 3.11 -o constraints.txt -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
