# Two commands: `make run` (set-up + whole pipeline) and `make test` (set-up + tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Stage commands call `python`, so the venv goes first on PATH.
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

bench: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/extract.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV)
