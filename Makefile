# Every target sets itself up from nothing: a .venv with the project and what it needs.
# The install step re-runs only when pyproject.toml changes (a stamp file in .venv).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.framestream-installed
DATA   := $(VENV)/.framestream-data
PYTEST_ARGS ?=

.PHONY: all setup test test-slow demo bench lint clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

$(DATA): scripts/install-data.sh $(STAMP)
	bash scripts/install-data.sh $(PY)
	touch $@

setup: $(STAMP) $(DATA)

test: $(STAMP) $(DATA)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP) $(DATA)
	$(PY) -m pytest -m "slow" $(PYTEST_ARGS)

demo: $(STAMP) $(DATA)
	$(PY) -m framestream demo

bench: $(STAMP) $(DATA)
	$(PY) bench/run.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache bench/results/tmp
