"""The GPU validation scripts run end to end on a machine without a GPU, and never claim a pass there.

``prepare_gpu_check.sh`` builds the folder a GPU machine gets (here with ``--no-nvcc``: the nvcc builds of the check
binaries take minutes and are covered by the CUDA configure step); ``gpu_check.sh`` then reports every GPU step
SKIPPED or UNVERIFIED with its reason and exits 3, the documented status for "nothing failed, not everything ran".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "runtime" / "src" / "kernels" / "cuda" / "tests"
GPU_STEPS = (
    "raw-kernels-int32",
    "raw-kernels-int64",
    "big-tensors",
    "big-grids",
    "cuda-graph",
    "sanitizer-memcheck",
    "sanitizer-racecheck",
    "sanitizer-synccheck",
    "sanitizer-initcheck",
)
ORT_STEPS = (
    "ort-session float32",
    "ort-session float16",
    "ort-profile CUDA nodes",
    "ort-iobinding device tensors",
    "ort-8-threads one session",
    "ort-enable_cuda_graph",
    "ort-sync-check",
    "timing add2d vs conv",
)


@pytest.fixture(scope="module")
def folder(library: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if b"cudaErrorInsufficientDriver" not in library.read_bytes():
        pytest.skip("the library was built without CUDA kernels: prepare_gpu_check.sh refuses it")
    out = tmp_path_factory.mktemp("gpu") / "folder"
    result = subprocess.run(
        ["bash", str(TESTS / "prepare_gpu_check.sh"), str(out), "--no-nvcc"],
        env={**os.environ, "PYTHON": sys.executable, "HOLOCRON_RUNTIME_LIBRARY": str(library)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _summary(stdout: str) -> dict[str, str]:
    """step -> status, from the lines after the summary header (each step once)."""
    lines = stdout.split("== gpu_check summary", 1)[1].splitlines()[1:]
    steps: dict[str, str] = {}
    for line in lines:
        status, rest = line.split(" ", 1)
        step = rest.split(": ", 1)[0]
        assert step not in steps, f"{step} reported twice"
        steps[step] = status
    return steps


def test_folder_holds_what_the_gpu_run_needs(folder: Path) -> None:
    assert (folder / "lib" / "libholocron_ort.so").is_file()
    assert (folder / "gpu_check.sh").is_file() and (folder / "gpu_session_check.py").is_file()
    models = folder / "models"
    for case in ("add2d", "add2d_norm_groups", "involution2d", "lambda_local", "lambda_global"):
        for precision in ("float32", "float16"):
            assert (models / f"{case}_{precision}.onnx").is_file()
            assert (models / f"{case}_{precision}.npz").is_file()
    assert (models / "timing_add2d.onnx").is_file() and (models / "timing_conv.onnx").is_file()
    manifest = (folder / "MANIFEST").read_text()
    assert "cuda_arch sm_90" in manifest and "nvcc_binaries 0" in manifest
    assert int(manifest.split("cudart_version ")[1].split()[0]) >= 11000
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) <= 64 << 20


def test_gpu_steps_are_skipped_without_a_gpu(folder: Path) -> None:
    result = subprocess.run(
        ["bash", str(folder / "gpu_check.sh")],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    steps = _summary(result.stdout)
    assert set(steps) == {"environment", *GPU_STEPS, *ORT_STEPS}
    assert set(steps.values()) == {"SKIPPED"}, steps
    assert "SKIPPED environment: CUDA_VISIBLE_DEVICES hides every GPU" in result.stdout


def test_machine_without_nvidia_smi_reports_no_gpu(folder: Path) -> None:
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("this machine has nvidia-smi")
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    script = ["bash", str(folder / "gpu_check.sh")]
    result = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    steps = _summary(result.stdout)
    assert "PASS" not in steps.values() and "FAIL" not in steps.values()
    assert "SKIPPED big-tensors: no GPU: nvidia-smi not found" in result.stdout


def test_onnxruntime_part_is_unverified_without_the_cuda_provider(folder: Path) -> None:
    """The driver itself, with this environment's onnxruntime (CPU only): every step UNVERIFIED, none passed."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA execution provider")
    result = subprocess.run(
        [sys.executable, str(folder / "gpu_session_check.py"), str(folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"UNVERIFIED {step}" for step in ORT_STEPS]
    assert all("has no CUDAExecutionProvider" in line for line in lines)


def test_gpu_check_refuses_a_folder_prepare_did_not_build(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(TESTS / "gpu_check.sh"), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "not a folder built by prepare_gpu_check.sh" in result.stderr
