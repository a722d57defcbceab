# Two commands set everything up: `make run` and `make test`. Each creates .venv when missing and
# reinstalls only when a requirements file is newer than the stamp of the last install.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PIP_FLAGS := --disable-pip-version-check --quiet

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt -r requirements-dev.txt
	touch $@

run: $(RUN_STAMP)
	$(PY) main.py

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

bench: $(RUN_STAMP)
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
