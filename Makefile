# wedsync-otel developer commands. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit bench demo clean rules prometheus-tools

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
	$(BIN)/pytest

# The rule tests run Debian's promtool, amtool and prometheus: installed when missing (apt, root).
prometheus-tools:
	scripts/install-prometheus-tools.sh

rules: $(STAMP)
	$(BIN)/wedsync-otel rules --out collector-config/prometheus/wedding-rules.yml
	$(BIN)/wedsync-otel rules --histograms classic --out collector-config/prometheus/wedding-rules-classic.yml
	$(BIN)/wedsync-otel alertmanager --out collector-config/prometheus/alertmanager.yml
	$(BIN)/wedsync-otel dashboard --out collector-config/grafana/wedsync-dashboard.json

test: lint typecheck prometheus-tools unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_processor.py
	$(BIN)/python benchmarks/bench_instructions.py
	$(BIN)/python benchmarks/bench_quantiles.py
	$(BIN)/python benchmarks/bench_instrumentation.py
	$(BIN)/python benchmarks/bench_asgi.py
	$(BIN)/python benchmarks/bench_collector.py

demo: $(STAMP)
	$(BIN)/wedsync-otel demo

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
