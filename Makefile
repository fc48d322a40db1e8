# medlake — the commands a person runs. Everything installs into .venv from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MEDLAKE_HOME ?= $(CURDIR)/.medlake
export DAGSTER_HOME ?= $(MEDLAKE_HOME)/dagster
export SODA_CORE_TELEMETRY_ENABLED := false
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1
# Salt for the masking operator's hashes: a demo value; production sets its own secret in the environment.
export MEDLAKE_MASK_SALT ?= medlake-demo-salt
DEMO_ARGS ?= --patients 3000 --days 5 --institutions 4 --seed 7

.PHONY: setup demo test test-fast dev bench lint clean status

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m pip install -q uv==0.13.8
	$(PYTHON) -m uv venv -q --allow-existing -p $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(PYTHON) -m uv pip install -q -r requirements.lock
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(PYTHON) -m uv pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/.installed
	@mkdir -p $(DAGSTER_HOME)

demo: setup
	$(BIN)/medlake demo $(DEMO_ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not spark" -x -q

dev: setup
	$(BIN)/dagster dev -w workspace.yaml

status: setup
	$(BIN)/medlake status

bench: setup
	$(BIN)/python -m medlake.bench

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(MEDLAKE_HOME) dbt_project/target dbt_project/logs
