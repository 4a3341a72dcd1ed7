# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both are idempotent: a second run skips the set-up that is already done.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: run test setup lint clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: on the CPU-only build machines this picks the local
# CPU wheel; an unpinned torch would pull several GB of CUDA packages.
$(VENV)/.torch-installed: | $(PY)
	$(PIP) install torch==2.13.0
	touch $@

$(VENV)/.deps-installed: pyproject.toml constraints.txt $(VENV)/.torch-installed
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.deps-installed

run: setup
	$(VENV)/bin/rlhf-workbench gui

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: setup
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)
