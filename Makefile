# Two commands: `make run` (set-up + whole pipeline) and `make test` (set-up + tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLOTS_PAGE := .dvc/plots/offline.html

.PHONY: setup run test quicktest bench clean

setup: $(STAMP) $(PLOTS_PAGE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The offline page template of `dvc plots show` (named in .dvc/config).
$(PLOTS_PAGE): $(STAMP)
	$(BIN)/python -m videoclf.offline_plots $@

# Stage commands call `python`, so the venv goes first on PATH.
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

# The edit loop: everything but the real dvc pipelines and multi-process training.
quicktest: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not slow"

bench: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/extract.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV)
