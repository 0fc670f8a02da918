# Set-up and the two quick-start jobs. Exact dependency versions live in requirements.lock.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint ui

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

# MLflow's UI over the project's store; open the URL it prints (the "Model training" view).
ui: setup
	@echo "open http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning"
	mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(CURDIR)/mlflow.db
