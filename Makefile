# Set-up and the two quick-start jobs. Exact dependency versions live in requirements.lock.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint ui quick profile

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

# A profile (profiles/<name>.yaml) on the committed code, in a scratch worktree (.<name>/,
# git-ignored), so the tracked params.yaml is never rewritten; it logs into this project's MLflow
# store (make ui). `make quick`: the first results in minutes; `make profile PROFILE=full`: the
# whole study (over an hour; `long`: full with more seeds). Report: .<name>/reports/report.md.
PROFILE ?= quick
# Checked by make itself before any shell sees it: one word naming an existing profile file.
ifneq ($(filter profile quick,$(MAKECMDGOALS)),)
ifneq ($(words $(PROFILE)) $(wildcard profiles/$(PROFILE).yaml),1 profiles/$(PROFILE).yaml)
$(error PROFILE=$(PROFILE): no such profile; known: $(basename $(notdir $(wildcard profiles/*.yaml))))
endif
endif
quick: profile
profile: setup
	rm -rf .$(PROFILE) && git worktree prune && git worktree add -q --detach .$(PROFILE) HEAD
	cd .$(PROFILE) && PYTHONPATH=$(CURDIR)/.$(PROFILE)/src initbench profile $(PROFILE)
	cd .$(PROFILE) && PYTHONPATH=$(CURDIR)/.$(PROFILE)/src \
	  MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} dvc repro
	@echo "report: .$(PROFILE)/reports/report.md; browse the runs: make ui"
