# Two commands (see README):  make demo   |   make test
# Both create .venv on first use (idempotent: reinstalls only when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.corpusmill-installed
ARGS   ?=

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned, so the range in pyproject resolves to it (no multi-GB CUDA download where a CPU wheel is at hand)
	$(BIN)/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev,ray,dataflow,toxicity]"
	$(BIN)/corpusmill assets
	@touch $(STAMP)

demo: setup
	$(BIN)/corpusmill demo $(ARGS)

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider $(ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" $(ARGS)

bench: setup
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
