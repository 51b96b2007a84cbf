# Two commands (see README):  make demo   |   make test
# Both create .venv on first use (idempotent: reinstalls only when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.corpusmill-installed
ARGS   ?=

.PHONY: setup browser demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned, so the range in pyproject resolves to it (no multi-GB CUDA download where a CPU wheel is at hand)
	$(BIN)/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[train,dev,ray,dataflow,toxicity]"
	$(BIN)/corpusmill assets
	@touch $(STAMP)

demo: setup
	$(BIN)/corpusmill demo $(ARGS)

# the HTML report is tested in a real headless browser (Debian's chromium); installed when we can, else those tests skip
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "note: could not install chromium; the browser tests will skip"; \
	  else echo "note: chromium not installed (apt-get install chromium); the browser tests will skip"; fi; }

test: setup browser
	$(BIN)/python -m pytest -q -p no:cacheprovider $(ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" $(ARGS)

bench: setup
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
