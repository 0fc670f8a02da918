# Set-up and the two quick-start jobs. Exact dependency versions live in requirements.lock.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25"
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# The main job: the whole DVC pipeline on the default params.yaml.
repro: setup
	dvc repro

lint: setup
	ruff check src tests

# The test suite: lint, unit tests, and the end-to-end pipeline run on a small configuration.
test: lint
	pytest -q
