# `make run` (set-up + whole pipeline) and `make test` (set-up + tests) are the two a user
# needs; `quicktest` is the edit loop, `lint` the style and type checks CI runs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLOTS_PAGE := .dvc/plots/offline.html

.PHONY: setup run test quicktest lint bench clean

setup: $(STAMP) $(PLOTS_PAGE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,ray]'
	touch $@

# The offline page template of `dvc plots show` (named in .dvc/config).
$(PLOTS_PAGE): $(STAMP)
	$(BIN)/python -m videoclf.report.offline_page $@

# Stage commands call `python`, so the venv goes first on PATH.
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# Two workers, each a whole test file at a time (--dist loadfile), so a module's fixtures (the
# dvc project of tests/pipeline) are built once and the session fixtures once per worker; the
# longest files first (tests/conftest.py: LONGEST_FIRST, not xdist's order by test count).
TEST_WORKERS ?= 2
test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Everything but the tests that train, start processes that load TensorFlow, serve HTTP
# in another process or kill one (marked slow).
quicktest: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not slow"

# ruff (lint and import order) over the whole tree; mypy over all of src/videoclf.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/extract.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV)
