# The two commands the README promises:
#   make example   run the example app on the embedded SQLite default
#   make test      install what the tests need, lint, type-check and run every test
#   make test-dash-versions   the Dash tests on the oldest declared Dash and the newest 2.x,
#                  3.x and 4.x, each in its own venv (DASH_VERSIONS=... to choose)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: example test test-dash-versions lint system-deps venv clean

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

example: venv
	$(PY) examples/basic_app.py

system-deps:
	scripts/install-system-deps

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: system-deps lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-dash-versions: system-deps
	PYTHON=$(PYTHON) scripts/test-dash-versions

clean:
	rm -rf $(VENV) .venv-dash .pytest_cache .mypy_cache .ruff_cache .hypothesis
