# The README's two commands: `make run` (set up, ingest the bundled corpus, serve) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KB     := $(BIN)/kb

.PHONY: install install-dev run ingest serve test fuzz eval bench load lint fmt clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"

# Runtime dependencies, pinned (constraints.txt pins every transitive package too), and Debian's Tesseract with
# German, English, Turkish, Arabic and Ukrainian for OCR of scanned pages and images.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng tesseract-ocr-tur tesseract-ocr-ara tesseract-ocr-ukr
$(VENV)/.runtime: requirements.txt constraints.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -r requirements.txt -c constraints.txt
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	dpkg -s $(OCR_PACKAGES) >/dev/null 2>&1 || (apt-get update && apt-get install -y $(OCR_PACKAGES)) \
	  || echo "Tesseract could not be installed (needs root: apt-get install $(OCR_PACKAGES)): scanned pages and images will not be read."
	touch $@

# Development tools, and Debian's Chromium for the browser tests (never a downloaded browser).
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install -r requirements-dev.txt -c constraints.txt
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
	  || echo "Chromium could not be installed (needs root): the browser tests will be skipped."
	touch $@

## install: the venv, the pinned dependencies and the prepared model (once; later runs are no-ops)
install: $(VENV)/.runtime
	$(KB) prepare-model

install-dev: install $(VENV)/.dev

## run: set up, ingest corpus/ into index/ (incrementally), serve on http://$KB_HOST:$KB_PORT
run: install
	$(KB) ingest || [ $$? -eq 6 ]
	$(KB) serve

ingest: install
	$(KB) ingest

serve: install
	$(KB) serve

## test: the whole suite on the real model, FAISS and SQLite
test: install-dev
	$(BIN)/python -m pytest

## fuzz: only the property-based API tests (schemathesis against the OpenAPI schema, under a minute)
fuzz: install-dev
	$(BIN)/python -m pytest -m fuzz

## eval: every search mode on ../shared/eval and eval/bundled → the tables of docs/quality.md (about 15 minutes)
eval: install
	$(BIN)/python -m bench.quality

## bench: ingestion, search latency at 1k–100k chunks, memory, quality per encoder → the tables of docs/performance.md (about 1.5 h on 2 cores: 3 ingestion rounds per corpus and encoder)
## (add BENCH_ARGS="--sizes 1000 10000 100000 1000000" for the 1M size)
bench: install-dev
	$(BIN)/python -m bench.performance $(BENCH_ARGS)

## load: 1, 8 and 32 concurrent clients against kb serve on loopback → the load table of docs/performance.md (about 2 minutes)
load: install-dev
	$(BIN)/python -m bench.load

lint: install-dev
	$(BIN)/ruff check kb tests tools bench
	$(BIN)/ruff format --check kb tests tools bench
	$(BIN)/mypy

fmt: install-dev
	$(BIN)/ruff format kb tests tools bench
	$(BIN)/ruff check --fix kb tests tools bench

clean:
	rm -rf $(VENV) index .pytest_cache .mypy_cache .ruff_cache
