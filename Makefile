# Two commands set everything up: `make run` and `make test`. Each creates .venv when missing and
# reinstalls only when a requirements file is newer than the stamp of the last install.
# Python 3.11 to 3.13 are supported. PYTHON picks the interpreter that creates the virtual
# environment (`make test PYTHON=python3.13 VENV=.venv-3.13`); `make test-newest` does that for the
# newest supported one, in its own .venv-3.13, so it never disturbs .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The newest supported Python: python3.13 on PATH, else pyenv's 3.13 (whose shim fails unless that
# version is selected).
NEWEST_PYTHON ?= $(firstword $(foreach candidate,python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13),\
	$(shell $(candidate) -c "" >/dev/null 2>&1 && echo $(candidate))))
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The standalone build has its own environment: only the runtime and the packaging tools, so nothing
# the tests or the cluster bring (Ray, and through it pyarrow) can end up in the bundle.
PACKAGE_VENV := .venv-package
PACKAGE_PY := $(PACKAGE_VENV)/bin/python
PACKAGE_STAMP := $(PACKAGE_VENV)/.installed-package
PACKAGE_REQUIREMENTS := $(PACKAGE_VENV)/requirements-runtime.txt
PIP_FLAGS := --disable-pip-version-check --quiet

.PHONY: run test test-newest lint bench bench-scaling package screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	touch $@

# Tests cover the cluster options too, so they install Ray (requirements-cluster.txt) as well.
$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt requirements-cluster.txt
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt -r requirements-dev.txt -r requirements-cluster.txt
	touch $@

# requirements.txt with TensorFlow's CPU wheel where there is one (packaging/runtime_requirements.py
# says why), so the bundle carries no CUDA kernels it cannot use. Made afresh whenever a requirement
# changes: pip never removes a package that a requirement no longer brings, and PyInstaller bundles
# whatever is installed and imported.
$(PACKAGE_STAMP): requirements.txt requirements-package.txt packaging/runtime_requirements.py
	rm -rf $(PACKAGE_VENV)
	$(PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_PY) packaging/runtime_requirements.py requirements.txt > $(PACKAGE_REQUIREMENTS)
	$(PACKAGE_PY) -m pip install $(PIP_FLAGS) -r $(PACKAGE_REQUIREMENTS) -r requirements-package.txt
	touch $@

run: $(RUN_STAMP)
	$(PY) main.py

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# Two test processes suit the 2-core CI machine; TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test-newest:
	@test -n "$(NEWEST_PYTHON)" || { echo "No Python 3.13 found: make test-newest NEWEST_PYTHON=/path/to/python3.13"; exit 2; }
	$(MAKE) test PYTHON=$(NEWEST_PYTHON) VENV=.venv-3.13

# The README's and the guide's pictures, from the real window, offscreen (docs/images/*.png).
screenshots: $(RUN_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) docs/make_screenshots.py

bench: $(RUN_STAMP)
	$(PY) bench/pipeline.py

bench-scaling: $(DEV_STAMP)
	$(PY) bench/scaling.py

# The standalone program: dist/FitStudio/FitStudio (onedir; see packaging/fitstudio.spec).
package: $(PACKAGE_STAMP)
	$(PACKAGE_VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/fitstudio.spec
	@# Wheels ship their libraries with symbol tables (~0.35 GB, TensorFlow's most) that nothing at run time reads.
	$(PACKAGE_PY) packaging/strip_bundle.py dist/FitStudio
	@# The application menu entry and its icon, put in place by the user with ./install.sh.
	cp packaging/install.sh packaging/FitStudio.desktop packaging/fitstudio.png dist/FitStudio/
	@echo "Bundle: dist/FitStudio, $$(du -sb dist/FitStudio | cut -f1) bytes"

clean:
	rm -rf $(VENV) .venv-3.13 $(PACKAGE_VENV) build dist .pytest_cache .ruff_cache
