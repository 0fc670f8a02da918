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

# A profile (profiles/<name>.yaml) as a DVC experiment of the project, named after it: `dvc exp
# run --temp` in DVC's own throwaway copy of this checkout (HEAD and uncommitted changes to
# tracked files), so the tracked params.yaml, dvc.lock and reports/ are never rewritten; its
# outputs stay in the DVC cache (the same profile on the same code again restores them instead of
# retraining) and its runs in this project's store (make ui). `make quick`: the first results in
# minutes; `make profile PROFILE=full`: the whole study (over an hour; `long`: full with more
# seeds). `dvc exp show` compares it; the command prints where its report is. Nothing here
# deletes anything.
PROFILE ?= quick
# Checked by make itself before any shell sees it: one word naming an existing profile file
# (not a path: ./quick, /quick and ../params are refused); initbench checks it again.
ifneq ($(filter profile quick,$(MAKECMDGOALS)),)
ifneq ($(words $(PROFILE)) $(wildcard profiles/$(PROFILE).yaml) $(PROFILE),1 profiles/$(PROFILE).yaml $(notdir $(basename $(PROFILE))))
$(error PROFILE=$(PROFILE): no such profile; known: $(basename $(notdir $(wildcard profiles/*.yaml))))
endif
endif
quick: profile
profile: setup
	initbench profile $(PROFILE) --run
