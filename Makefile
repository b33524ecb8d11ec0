# The two commands the README promises:
#   make example   run the data app on the embedded SQLite default (EXAMPLE=basic_app or
#                  EXAMPLE=login_app for the others); installs only what the examples need
#   make test      install what the tests need, lint, type-check and run every test
#   make proof     python -m dash_database.proof: the load, fault and log figures of the
#                  README's Guarantees (starts its own Redis and PostgreSQL)
#   make test-dash-versions   the Dash tests on the oldest declared Dash and the newest 2.x,
#                  3.x and 4.x, each in its own venv (DASH_VERSIONS=... to choose)
#   make test-oldest-versions the backend, contract, metrics and CLI tests with the oldest
#                  release of every declared dependency (scripts/oldest-versions.txt)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXAMPLE ?= data_app
# setuptools reminds every editable install, as an "information only" warning, that a folder
# named like the package shadows it; that is the point of an editable install of this repo.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q \
	--disable-pip-version-check

.PHONY: example test test-dash-versions test-oldest-versions lint proof system-deps venv clean

$(PY):
	@echo "Creating $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip

# The package and the examples' few extra packages, not the test toolchain.
$(VENV)/.examples-installed: pyproject.toml setup.py | $(PY)
	@echo "Installing dash_database and the examples' packages into $(VENV)"
	@$(PIP_INSTALL) -e ".[examples]"
	touch $@

$(VENV)/.installed: pyproject.toml setup.py | $(PY)
	$(PIP_INSTALL) -e ".[test,dash-extensions]"
	touch $@

venv: $(VENV)/.installed

example: $(VENV)/.examples-installed
	@echo "Serving examples/$(EXAMPLE).py on http://127.0.0.1:8050 (Ctrl+C stops it)"
	@$(PY) examples/$(EXAMPLE).py

system-deps:
	scripts/install-system-deps

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: system-deps lint
	$(PY) -m pytest $(PYTEST_ARGS)

proof: system-deps venv
	$(PY) -m dash_database.proof

test-dash-versions: system-deps
	PYTHON=$(PYTHON) scripts/test-dash-versions

test-oldest-versions: system-deps
	PYTHON=$(PYTHON) scripts/test-oldest-versions

clean:
	rm -rf $(VENV) .venv-dash .venv-oldest .pytest_cache .mypy_cache .ruff_cache .hypothesis
