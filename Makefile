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

.PHONY: setup demo test test-fast dev serve bench lint clean status

$(BIN)/.installed: requirements.lock pyproject.toml
	@scripts/check-prerequisites $(PYTHON)
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(BIN)/.installed
	@$(BIN)/python -c "from medlake.pipeline import prepare_instance; prepare_instance()"

demo: setup
	$(BIN)/medlake demo $(DEMO_ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not spark and not faults" -x -q

dev: setup
	$(BIN)/dagster dev -w workspace.yaml

serve: setup
	$(BIN)/medlake serve $(SERVE_ARGS)

status: setup
	$(BIN)/medlake status

bench: setup
	$(BIN)/python -m medlake.bench

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(MEDLAKE_HOME) dbt_project/target dbt_project/logs
