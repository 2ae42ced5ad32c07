#!/usr/bin/env bash
# Build and run the standalone check of the holocron CUDA kernels (check_kernels.cu), once with 32-bit and once
# with forced 64-bit index arithmetic.
#   run_check.sh             on a machine with a CUDA GPU (nvcc; CUDA_ARCH defaults to "native")
#   run_check.sh --sanitize  same, each run under compute-sanitizer memcheck (racecheck for a third run)
#   run_check.sh --emulate   without a GPU: g++ builds the kernels against the CPU emulation in emu/
# Build outputs go to BUILD_DIR (default: a fresh temporary directory). Exit status non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
mode="${1:-gpu}"
build="${BUILD_DIR:-$(mktemp -d -t holocron_cuda_check.XXXXXX)}"
mkdir -p "$build"
kernels=(add2d involution2d lambda_layer)

build_gpu() {  # $1: output binary, remaining: extra flags
  local out="$1"
  shift
  local sources=()
  for name in "${kernels[@]}"; do sources+=("$src/$name.cu"); done
  nvcc -std=c++17 -O3 -arch="${CUDA_ARCH:-native}" -lineinfo -Xcompiler -Wall,-Wextra --Werror all-warnings "$@" \
    -o "$out" "$here/check_kernels.cu" "${sources[@]}"
}

build_emulated() {  # $1: output binary, remaining: extra flags
  local out="$1"
  shift
  local sources=()
  for name in "${kernels[@]}"; do
    python3 "$here/emu/rewrite_launches.py" "$src/$name.cu" "$build/$name.emu.cpp"
    sources+=("$build/$name.emu.cpp")
  done
  g++ -std=c++20 -O2 -pthread -Wall -Wextra -Wno-unknown-pragmas -Wno-unused-parameter "$@" \
    -I"${CUDA_HOME:-/usr/local/cuda}/include" -I"$src" -include "$here/emu/emu.h" \
    "${sources[@]}" "$here/emu/emu_runtime.cpp" -x c++ "$here/check_kernels.cu" -o "$out"
}

status=0
for index in int32 int64; do
  flags=()
  [[ "$index" == int64 ]] && flags=(-DHOLOCRON_CUDA_FORCE_INT64_INDEX)
  binary="$build/check_kernels_$index"
  echo "== $index indexing ($mode)"
  case "$mode" in
    gpu | --sanitize)
      build_gpu "$binary" "${flags[@]}"
      if [[ "$mode" == --sanitize ]]; then
        compute-sanitizer --tool memcheck --error-exitcode 3 "$binary" || status=1
        compute-sanitizer --tool racecheck --error-exitcode 3 "$binary" || status=1
      else
        "$binary" || status=1
      fi
      ;;
    --emulate)
      build_emulated "$binary" "${flags[@]}"
      "$binary" || status=1
      ;;
    *)
      echo "usage: $0 [--sanitize | --emulate]" >&2
      exit 2
      ;;
  esac
done
exit "$status"
