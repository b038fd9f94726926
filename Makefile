# The README's two commands: `make demo` and `make test`. Each sets itself up from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba-cache

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml requirements-musicnn.txt | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	# the musicnn weights: --no-deps, its own pins (numpy<1.17, tensorflow) do not install on Python 3.11
	$(BIN)/pip install --quiet --no-deps -r requirements-musicnn.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/music-classifier demo --dir demo-output

test: install
	$(BIN)/ruff check music_classifier tests benchmarks
	$(BIN)/pytest -q -n auto --maxprocesses 4 --dist worksteal

clean:
	rm -rf $(VENV) demo-output .numba-cache .pytest_cache
