# wedsync-otel developer commands. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The viewer extra (Arize Phoenix) cannot be resolved beside dev: its tests get a venv of their own.
VIEWER_VENV ?= .venv-viewer
VIEWER_STAMP := $(VIEWER_VENV)/.installed

.PHONY: test lint typecheck unit unit-compiled compiled test-viewer bench demo clean rules prometheus-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest --ignore=tests/test_viewer.py

# The compiled core: the wheel pyproject's mypyc hook builds, unpacked for PYTHONPATH.
COMPILED ?= .build/compiled
COMPILED_STAMP := $(COMPILED)/.built
COMPILED_TESTS ?= --ignore=tests/test_viewer.py
ON_COMPILED := PYTHONPATH=$(COMPILED)
SOURCES := $(shell find src -name '*.py')

$(COMPILED_STAMP): $(STAMP) pyproject.toml scripts/build-compiled.sh $(SOURCES)
	scripts/build-compiled.sh $(BIN)/python $(COMPILED)

compiled: $(COMPILED_STAMP)

# The suite again on the compiled core (`unit` runs it on the pure-Python fallback).
unit-compiled: $(COMPILED_STAMP)
	WEDSYNC_OTEL_EXPECT_COMPILED=1 $(ON_COMPILED) $(BIN)/pytest -p no:cacheprovider $(COMPILED_TESTS)

$(VIEWER_VENV)/bin/python:
	$(PYTHON) -m venv $(VIEWER_VENV)

$(VIEWER_STAMP): $(VIEWER_VENV)/bin/python pyproject.toml
	$(VIEWER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VIEWER_VENV)/bin/python -m pip install --quiet -e '.[viewer,demo,db]' 'pytest>=8.2'
	touch $(VIEWER_STAMP)

# Arize Phoenix behind rotel, and `wedsync-otel demo --viewer`, in .venv-viewer.
test-viewer: $(VIEWER_STAMP)
	$(VIEWER_VENV)/bin/pytest tests/test_viewer.py

# The rule tests run Debian's promtool, amtool and prometheus: installed when missing (apt, root).
prometheus-tools:
	scripts/install-prometheus-tools.sh

rules: $(STAMP)
	$(BIN)/wedsync-otel rules --out collector-config/prometheus/wedding-rules.yml
	$(BIN)/wedsync-otel rules --histograms classic --out collector-config/prometheus/wedding-rules-classic.yml
	$(BIN)/wedsync-otel alertmanager --out collector-config/prometheus/alertmanager.yml
	$(BIN)/wedsync-otel dashboard --out collector-config/grafana/wedsync-dashboard.json

test: lint typecheck prometheus-tools unit unit-compiled test-viewer

# The per-span benchmarks run on both builds: pure Python, then the compiled core.
bench: $(STAMP) $(COMPILED_STAMP)
	$(BIN)/python benchmarks/bench_processor.py
	$(ON_COMPILED) $(BIN)/python benchmarks/bench_processor.py
	$(BIN)/python benchmarks/bench_scrub.py
	$(BIN)/python benchmarks/bench_instructions.py
	$(BIN)/python benchmarks/bench_quantiles.py
	$(BIN)/python benchmarks/bench_instrumentation.py
	$(ON_COMPILED) $(BIN)/python benchmarks/bench_instrumentation.py
	$(BIN)/python benchmarks/bench_asgi.py
	$(ON_COMPILED) $(BIN)/python benchmarks/bench_asgi.py
	$(BIN)/python benchmarks/bench_collector.py
	$(BIN)/python benchmarks/bench_report.py

demo: $(STAMP)
	$(BIN)/wedsync-otel demo

clean:
	rm -rf $(VENV) $(VIEWER_VENV) .build .mypy_cache .pytest_cache .ruff_cache .hypothesis
