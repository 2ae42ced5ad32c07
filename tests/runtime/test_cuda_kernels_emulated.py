"""The CUDA kernels' logic, checked on a machine without a GPU.

``runtime/src/kernels/cuda/tests/run_check.sh --emulate`` compiles the ``.cu`` kernels with g++ against a CPU
emulation of the CUDA execution model (blocks of real threads with real barriers, grids cut short so grid-stride loops
run) and compares every launcher with a float64 reference, in 32- and 64-bit index arithmetic. It cannot show GPU
timing or memory-model issues; on a GPU machine run the script without ``--emulate``.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "runtime" / "src" / "kernels" / "cuda" / "tests" / "run_check.sh"
CUDA_HOME = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))


def test_cuda_kernels_match_reference_under_cpu_emulation(tmp_path: Path) -> None:
    if shutil.which("g++") is None or not (CUDA_HOME / "include" / "cuda_runtime.h").exists():
        pytest.skip("needs g++ and the CUDA headers (cuda_runtime.h) for the emulated build")
    result = subprocess.run(
        ["bash", str(SCRIPT), "--emulate"],
        env={**os.environ, "BUILD_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stdout.count("ALL PASS: 0 failure(s)") == 2, result.stdout[-4000:]
    assert "FAIL " not in result.stdout
