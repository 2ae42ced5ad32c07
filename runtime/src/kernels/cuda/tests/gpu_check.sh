#!/usr/bin/env bash
# The GPU validation of holocron's CUDA kernels, in one go, on a machine with an NVIDIA GPU. Runs from the folder
# that prepare_gpu_check.sh built (it copies this script there), using nothing else but the machine's own driver and,
# where present, compute-sanitizer, python3 and onnxruntime-gpu (torch for the cuDNN timing).
#
#   bash FOLDER/gpu_check.sh [FOLDER]
#
# Steps, each reported on one line as PASS, FAIL, SKIPPED or UNVERIFIED with its reason, and again in a summary:
#   environment         GPU, driver, and whether the driver runs the CUDA runtime the folder was built with
#   raw-kernels int32   check_kernels against float64 references, 32-bit index arithmetic
#   raw-kernels int64   the same with 64-bit index arithmetic forced
#   big-tensors         Add2d on a 6 GiB input, Involution2d on a 4 GiB one (more than 2^30 elements)
#   big-grids           grids beyond 65,535 blocks (x), more channel tiles than gridDim.y holds
#   cuda-graph          the three ops captured in one CUDA graph and replayed
#   sanitizer-*         compute-sanitizer memcheck, racecheck, synccheck, initcheck on the raw-kernel check
#   ort-*, timing       gpu_session_check.py: onnxruntime-gpu sessions per op and precision against the CPU
#                       kernels, placement on CUDA, IOBinding, 8 threads, enable_cuda_graph, the sync-check switch,
#                       Add2d against cuDNN convolution (TF32 off and on)
# A global deadline (GPU_CHECK_DEADLINE_S, default 510 s) bounds the whole run; steps it cuts short are reported.
# Without a GPU (none listed by nvidia-smi, or CUDA_VISIBLE_DEVICES set to "" or -1) every GPU step is SKIPPED.
# Exit status: 0 every step passed; 1 a step failed; 3 none failed but some were SKIPPED or UNVERIFIED (so a
# partial run never reads as a full pass); 2 usage (the folder is not one prepare_gpu_check.sh built).
set -uo pipefail

folder="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")}" 2>/dev/null && pwd)" || { echo "usage: $0 [FOLDER]" >&2; exit 2; }
[[ -f "$folder/MANIFEST" && -f "$folder/lib/libholocron_ort.so" ]] || {
  echo "gpu_check: $folder is not a folder built by prepare_gpu_check.sh (no MANIFEST or lib/)" >&2
  exit 2
}
deadline=$((SECONDS + ${GPU_CHECK_DEADLINE_S:-510}))
summary=()
log="$(mktemp -t holocron_gpu_check.XXXXXX)"

report() {  # status step detail
  local line="$1 $2: $3"
  echo "$line"
  summary+=("$line")
}

left() { echo $((deadline - SECONDS)); }

# run_step STEP CAP_SECONDS CMD...: PASS on exit 0, SKIPPED on exit 2 (the command's "cannot run here"), else FAIL.
run_step() {
  local step="$1" cap="$2"
  shift 2
  local budget
  budget=$(($(left) - 5))
  ((budget > cap)) && budget=$cap
  if ((budget < 10)); then
    report SKIPPED "$step" "global deadline reached"
    return
  fi
  local start=$SECONDS rc=0
  timeout --kill-after=5 "$budget" "$@" >"$log" 2>&1 || rc=$?
  local took=$((SECONDS - start)) tail_line
  tail_line="$(grep -E 'FAIL|ALL PASS|SKIPPED|error' "$log" | tail -n 1 | cut -c1-160)"
  case "$rc" in
    0) report PASS "$step" "${took}s ${tail_line}" ;;
    2) report SKIPPED "$step" "$(tail -n 1 "$log" | cut -c1-160)" ;;
    124 | 137) report FAIL "$step" "timed out after ${budget}s" ;;
    *) report FAIL "$step" "exit $rc after ${took}s: $(grep -E 'FAIL|error' "$log" | head -n 3 | tr '\n' ' ' | cut -c1-300)" ;;
  esac
  sed 's/^/    /' "$log" | tail -n 40 >&2
}

gpu_steps=(raw-kernels-int32 raw-kernels-int64 big-tensors big-grids cuda-graph sanitizer-memcheck sanitizer-racecheck
  sanitizer-synccheck sanitizer-initcheck)
ort_steps=("ort-session float32" "ort-session float16" "ort-profile CUDA nodes" "ort-iobinding device tensors"
  "ort-8-threads one session" "ort-enable_cuda_graph" "ort-sync-check" "timing add2d vs conv")

# --- environment -----------------------------------------------------------------------------------------------
gpu=""
if [[ "${CUDA_VISIBLE_DEVICES-unset}" == "" || "${CUDA_VISIBLE_DEVICES-unset}" == "-1" ]]; then
  no_gpu="CUDA_VISIBLE_DEVICES hides every GPU"
elif ! command -v nvidia-smi >/dev/null; then
  no_gpu="no GPU: nvidia-smi not found"
elif ! gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)" ||
  [[ -z "$gpu" ]]; then
  no_gpu="no GPU: nvidia-smi lists none"
fi
built="$(awk '$1 == "cudart_version" {print $2}' "$folder/MANIFEST")"
if [[ -z "$gpu" ]]; then
  report SKIPPED environment "$no_gpu; folder built for CUDA runtime ${built:-?}"
  for step in "${gpu_steps[@]}" "${ort_steps[@]}"; do report SKIPPED "$step" "$no_gpu"; done
else
  driver_cuda="$(nvidia-smi | grep -oP 'CUDA Version:\s*\K[0-9]+\.[0-9]+' | head -n 1)"
  driver_code=$(awk -F. -v v="${driver_cuda:-0.0}" 'BEGIN {split(v, p, "."); print p[1] * 1000 + p[2] * 10}')
  if [[ -n "$built" && "$driver_code" -lt "$built" ]]; then
    report FAIL environment "$gpu; driver supports CUDA $driver_cuda < the folder's runtime $built (the library registers CPU kernels only)"
  else
    report PASS environment "$gpu; driver supports CUDA ${driver_cuda:-?}; folder built for $built ($(grep -m1 '^commit' "$folder/MANIFEST"))"
  fi

  # --- raw kernels, stress, graphs ------------------------------------------------------------------------------
  for index in int32 int64; do
    binary="$folder/bin/check_kernels_$index"
    if [[ -x "$binary" ]]; then
      run_step "raw-kernels-$index" 120 "$binary"
    else
      report UNVERIFIED "raw-kernels-$index" "bin/check_kernels_$index not in the folder (prepared with --no-nvcc)"
    fi
  done
  for mode in big:big-tensors grid:big-grids graph:cuda-graph; do
    if [[ -x "$folder/bin/gpu_stress" ]]; then
      run_step "${mode#*:}" 150 "$folder/bin/gpu_stress" "${mode%%:*}"
    else
      report UNVERIFIED "${mode#*:}" "bin/gpu_stress not in the folder (prepared with --no-nvcc)"
    fi
  done

  # --- compute-sanitizer ----------------------------------------------------------------------------------------
  sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
  for tool in memcheck racecheck synccheck initcheck; do
    if [[ -z "$sanitizer" ]]; then
      report SKIPPED "sanitizer-$tool" "compute-sanitizer not found"
    elif [[ ! -x "$folder/bin/check_kernels_int32" ]]; then
      report UNVERIFIED "sanitizer-$tool" "bin/check_kernels_int32 not in the folder"
    else
      run_step "sanitizer-$tool" 120 "$sanitizer" --tool "$tool" --error-exitcode 3 "$folder/bin/check_kernels_int32"
    fi
  done

  # --- onnxruntime-gpu ------------------------------------------------------------------------------------------
  if ! command -v python3 >/dev/null; then
    for step in "${ort_steps[@]}"; do report UNVERIFIED "$step" "python3 not found"; done
  elif (($(left) < 30)); then
    for step in "${ort_steps[@]}"; do report SKIPPED "$step" "global deadline reached"; done
  else
    while IFS= read -r line; do
      status="${line%% *}"
      rest="${line#* }"
      case "$status" in PASS | FAIL | UNVERIFIED | SKIPPED) report "$status" "${rest%%: *}" "${rest#*: }" ;; *) echo "    $line" >&2 ;; esac
    done < <(timeout --kill-after=5 $(($(left) - 5)) python3 "$folder/gpu_session_check.py" "$folder" 2>&1)
    for step in "${ort_steps[@]}"; do
      printf '%s\n' "${summary[@]}" | grep -qF " $step: " ||
        report FAIL "$step" "gpu_session_check.py ended (crash or deadline) before this step"
    done
  fi
fi

rm -f "$log"
echo "== gpu_check summary ($folder, ${SECONDS}s)"
printf '%s\n' "${summary[@]}"
if printf '%s\n' "${summary[@]}" | grep -q '^FAIL '; then exit 1; fi
if printf '%s\n' "${summary[@]}" | grep -qE '^(SKIPPED|UNVERIFIED) '; then exit 3; fi
exit 0
