# Newcomer entry points: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORT_HEADERS_DIR ?= build/ort-headers

.PHONY: setup test demo lint bench clean

setup:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@inc=$$(scripts/fetch_ort_headers.sh $(ORT_HEADERS_DIR)) && \
	  echo "onnxruntime headers: $$inc" && \
	  ONNXRUNTIME_INCLUDE_DIR=$$inc $(BIN)/python -m pip install -q -e ".[test]"

test: setup
	HOLOCRON_REQUIRE_RUNTIME=1 $(BIN)/python -m pytest -q

demo: setup
	$(BIN)/holocron-export --demo --format onnx -o build/demo.onnx --report build/demo-report.json --force
	$(BIN)/python benchmarks/demo_speed.py build/demo.onnx

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_networks.py

clean:
	rm -rf build $(VENV) .pytest_cache .hypothesis
