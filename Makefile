# Set-up and the two quick-start jobs. Exact dependency versions live in requirements.lock.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint ui quick

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

# The first results in minutes: the quick profile (profiles/quick.yaml) on the committed code, in a
# scratch worktree (.quick/, git-ignored), so the tracked params.yaml is never rewritten; it logs
# into this project's MLflow store (make ui). Report: .quick/reports/report.md.
quick: setup
	rm -rf .quick && git worktree prune && git worktree add -q --detach .quick HEAD
	cd .quick && PYTHONPATH=$(CURDIR)/.quick/src initbench profile quick
	cd .quick && PYTHONPATH=$(CURDIR)/.quick/src \
	  MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} dvc repro
	@echo "report: .quick/reports/report.md; browse the runs: make ui"
