#!/usr/bin/env bash
# Build, on a CPU machine, the one folder that gpu_check.sh needs on a GPU machine beyond that machine's own tools
# (its driver, and compute-sanitizer, python3 and onnxruntime-gpu where present):
#   bin/check_kernels_int32, bin/check_kernels_int64   the raw-kernel check (check_kernels.cu), nvcc for CUDA_ARCH
#   bin/gpu_stress                                      big tensors, big grids, CUDA-graph capture (gpu_stress.cu)
#   lib/libholocron_ort.so                              the built custom-op library, with its CUDA kernels
#   models/                                             one-node models per op (float32, float16), inputs and the
#                                                       CPU kernels' outputs (gpu_check_models.py)
#   gpu_check.sh, gpu_session_check.py, MANIFEST        the script, the onnxruntime-gpu driver, what was built
#
#   prepare_gpu_check.sh OUT_DIR [--no-nvcc]
# --no-nvcc leaves bin/ empty (gpu_check.sh then reports those steps UNVERIFIED); the test suite uses it. Env:
# CUDA_ARCH (default sm_90: H100/H200), PYTHON (default python3; needs numpy, onnx, onnxruntime and, unless
# HOLOCRON_RUNTIME_LIBRARY names the library, the installed holocron), NVCC (default nvcc).
# Exit status: 0 built; 1 a piece could not be built or the folder is over 64 MiB; 2 usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
out="${1:-}"
[[ -n "$out" ]] || { echo "usage: $0 OUT_DIR [--no-nvcc]" >&2; exit 2; }
nvcc_build=1
[[ "${2:-}" == --no-nvcc ]] && nvcc_build=0
[[ -z "${2:-}" || "${2:-}" == --no-nvcc ]] || { echo "usage: $0 OUT_DIR [--no-nvcc]" >&2; exit 2; }
python="${PYTHON:-python3}"
arch="${CUDA_ARCH:-sm_90}"
nvcc="${NVCC:-nvcc}"
limit_mib=64

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/models"
kernels=("$src/add2d.cu" "$src/involution2d.cu" "$src/lambda_layer.cu")

if ((nvcc_build)); then
  command -v "$nvcc" >/dev/null || { echo "prepare_gpu_check: $nvcc not found (or pass --no-nvcc)" >&2; exit 1; }
  flags=(-std=c++17 -O3 -arch="$arch" -lineinfo -Xcompiler -Wall,-Wextra --Werror all-warnings)
  "$nvcc" "${flags[@]}" -o "$out/bin/check_kernels_int32" "$here/check_kernels.cu" "${kernels[@]}" &
  "$nvcc" "${flags[@]}" -DHOLOCRON_CUDA_FORCE_INT64_INDEX -o "$out/bin/check_kernels_int64" \
    "$here/check_kernels.cu" "${kernels[@]}" &
  "$nvcc" "${flags[@]}" -o "$out/bin/gpu_stress" "$here/gpu_stress.cu" "${kernels[@]}" &
  for job in $(jobs -p); do wait "$job" || { echo "prepare_gpu_check: an nvcc build failed" >&2; exit 1; }; done
fi

library="${HOLOCRON_RUNTIME_LIBRARY:-}"
if [[ -z "$library" ]]; then
  library="$("$python" -c 'import holocron.runtime as r; print(r.library_path())')"
fi
if ! grep -q cudaErrorInsufficientDriver "$library"; then
  echo "prepare_gpu_check: $library has no CUDA kernels (build it where nvcc is found)" >&2
  exit 1
fi
cp "$library" "$out/lib/libholocron_ort.so"

"$python" "$here/gpu_check_models.py" "$out/models" "$out/lib/libholocron_ort.so"
cp "$here/gpu_check.sh" "$here/gpu_session_check.py" "$out/"
{
  echo "commit $(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cuda_arch $arch"
  echo "nvcc_binaries $nvcc_build"
  if ((nvcc_build)); then echo "nvcc $("$nvcc" --version | tail -1)"; fi
  # The CUDA runtime the library and binaries were built with (1000 * major + 10 * minor), for the driver check.
  cuda_home="${CUDA_HOME:-/usr/local/cuda}"
  echo "cudart_version $(grep -m1 -oP '#define CUDART_VERSION\s+\K[0-9]+' "$cuda_home/include/cuda_runtime_api.h" || echo 0)"
} >"$out/MANIFEST"

size_kib=$(du -sk "$out" | cut -f1)
if ((size_kib > limit_mib * 1024)); then
  echo "prepare_gpu_check: $out is $((size_kib / 1024)) MiB, over the $limit_mib MiB limit" >&2
  exit 1
fi
echo "prepare_gpu_check: $out ready ($((size_kib / 1024)) MiB); on the GPU machine run: bash $out/gpu_check.sh"
