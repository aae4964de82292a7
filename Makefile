# Two commands do all the set-up on a fresh clone:
#   make run    create .venv, install, run the whole pipeline on the bundled sample batch
#   make test   install with dev extras and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test install install-dev lint typecheck browser-deps bench clean-processed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned, so pip takes the CPU wheel and never pulls a CUDA build.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[fast,multilingual]"
	touch $@

$(DEV_STAMP): pyproject.toml $(RUN_STAMP)
	$(BIN)/pip install --quiet -e ".[fast,multilingual,dev,cluster]"
	touch $@

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

run: install
	$(BIN)/wsis run

# Chromium renders report.html in a browser test; the test skips when it cannot be installed.
browser-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  ( (command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium chromium-driver >/dev/null) ) || \
	    echo "chromium not installed: browser tests will be skipped" )

test: install-dev browser-deps
	$(BIN)/pytest -n 2

lint: install-dev
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/mypy pipeline

bench: install-dev
	test -x .venv-bench/bin/python || ($(PYTHON) -m venv .venv-bench && .venv-bench/bin/pip install --quiet torch==2.13.0 \
		&& .venv-bench/bin/pip install --quiet -e ".[bench]")  # BERTopic only in its own env, never in $(VENV)
	$(BIN)/python benchmarks/run_all.py

clean-processed:
	rm -rf data/processed/*/ && touch data/processed/.gitkeep
