# Every target sets itself up from nothing: a .venv with the project and what it needs.
# The install step re-runs only when pyproject.toml changes (a stamp file in .venv).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.framestream-installed
DATA   := $(VENV)/.framestream-data
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: all setup test test-slow demo tour bench lint clean

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

# The main job: Fashion-MNIST -> CNN (2 epochs) -> scoring on Dask -> report, as Prefect flows.
# `make demo DEMO_ARGS=--quick` for a one-minute smoke run; `make tour` for the frames walkthrough.
demo: $(STAMP) $(DATA)
	$(PY) -m framestream demo $(DEMO_ARGS)

tour: $(STAMP) $(DATA)
	$(PY) -m framestream tour

bench: $(STAMP) $(DATA)
	$(PY) bench/run.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache bench/results/tmp
