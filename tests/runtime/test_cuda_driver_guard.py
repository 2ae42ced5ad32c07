"""The CUDA driver guard: CUDA kernels are registered only when the driver runs the CUDA runtime they were built with.

``registration_probe.cc`` calls the library's ``RegisterCustomOps`` with a stand-in for onnxruntime's API table and
lists the kernels it adds, so the choice is visible on a machine without a GPU; the driver is simulated with
``HOLOCRON_SIMULATE_CUDA_DRIVER_VERSION`` (read by the guard in place of ``cudaDriverGetVersion``). The note the
library says once goes through onnxruntime's session logger, governed by ``log_severity_level``.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model

REPO = Path(__file__).resolve().parents[2]
PROBE_SOURCE = Path(__file__).with_name("registration_probe.cc")
SIMULATE_ENV = "HOLOCRON_SIMULATE_CUDA_DRIVER_VERSION"
CUDA_HOME = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))
OPS = ("Add2d", "Involution2d", "Lambda")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("needs g++ to build the registration probe")
    headers = subprocess.run(
        ["bash", "scripts/fetch_ort_headers.sh", "build/ort-headers"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.strip()
    binary = tmp_path_factory.mktemp("probe") / "registration_probe"
    flags = ["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{headers}", f"-I{REPO / 'runtime' / 'src'}"]
    subprocess.run(
        ["g++", *flags, str(PROBE_SOURCE), "-ldl", "-o", str(binary)],
        check=True,
        timeout=120,
    )
    return binary


def _registered(probe: Path, library: Path, driver: str | None) -> list[tuple[str, str, str]]:
    env = {key: value for key, value in os.environ.items() if key != SIMULATE_ENV}
    if driver is not None:
        env[SIMULATE_ENV] = driver
    result = subprocess.run([str(probe), str(library)], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # registration says nothing on stderr, whatever the driver
    return [(op, provider, element) for op, provider, element in map(str.split, result.stdout.splitlines())]


def _cpu_only(kernels: list[tuple[str, str, str]]) -> bool:
    return sorted(kernels) == sorted((op, CPU, t) for op in OPS for t in ("float", "float16"))


def _runtime_version() -> int | None:
    """CUDART_VERSION of the CUDA headers the library is built against (1000 * major + 10 * minor)."""
    header = CUDA_HOME / "include" / "cuda_runtime_api.h"
    if not header.is_file():
        return None
    found = re.search(r"#define CUDART_VERSION\s+(\d+)", header.read_text())
    return int(found.group(1)) if found else None


@pytest.fixture(scope="module")
def cuda_build(library: Path) -> int:
    """The CUDA runtime version of a library built with CUDA kernels (its static cudart names the CUDA errors);
    skips for a CPU-only build."""
    runtime = _runtime_version()
    if runtime is None or b"cudaErrorInsufficientDriver" not in library.read_bytes():
        pytest.skip("the library was built without CUDA kernels")
    return runtime


def _decide(probe: Path, *args: object) -> tuple[bool, bool, str]:
    out = subprocess.run([str(probe), "--decide", *map(str, args)], capture_output=True, text=True, check=True)
    cuda, warn, note = out.stdout.rstrip("\n").split(" ", 2)
    return cuda == "cuda=1", warn == "warn=1", note


def test_rule_registers_cuda_only_for_a_driver_at_least_the_runtime(probe: Path) -> None:
    assert _decide(probe, 13000, 13000) == (True, False, "")
    assert _decide(probe, 13000, 13020) == (True, False, "")
    assert _decide(probe, 12040, 12080) == (True, False, "")

    cuda, warn, note = _decide(probe, 13000, 12080)
    assert (cuda, warn) == (False, True)
    assert "driver supports CUDA 12.8" in note and "CUDA 13.0 runtime" in note and "CPU kernels" in note
    assert _decide(probe, 12060, 12050)[:2] == (False, True)  # one minor version short is too old

    cuda, warn, note = _decide(probe, 13000, 0)
    assert (cuda, warn) == (False, False)  # no driver at all: a CPU machine, said at information level
    assert note.startswith("holocron: no CUDA driver found")

    cuda, warn, note = _decide(probe, 13000, 13000, "cudaErrorUnknown")
    assert (cuda, warn) == (False, True)
    assert "cudaErrorUnknown" in note

    assert _decide(probe, 0, 13000) == (False, False, "")  # built without CUDA kernels: nothing to say


def test_too_old_driver_registers_cpu_kernels_only(probe: Path, library: Path, cuda_build: int) -> None:
    older = (cuda_build // 1000 - 1) * 1000 + 80  # e.g. 12.8 for a 13.0 build
    assert _cpu_only(_registered(probe, library, str(older)))
    assert _cpu_only(_registered(probe, library, str(cuda_build - 10)))
    assert _cpu_only(_registered(probe, library, "0"))
    assert _cpu_only(_registered(probe, library, "not-a-version"))


def test_driver_for_the_runtime_registers_both_devices(probe: Path, library: Path, cuda_build: int) -> None:
    for driver in (cuda_build, cuda_build + 1000):
        kernels = _registered(probe, library, str(driver))
        assert sorted(kernels) == sorted((op, ep, t) for op in OPS for ep in (CPU, CUDA) for t in ("float", "float16"))


def test_machine_without_a_driver_registers_cpu_kernels_only(probe: Path, library: Path) -> None:
    """The real query (no simulation): on a machine without libcuda, cudaDriverGetVersion reports no driver."""
    if ctypes.util.find_library("cuda") is not None or Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has a CUDA driver")
    assert _cpu_only(_registered(probe, library, None))


_SESSIONS_SCRIPT = """
import sys
import numpy as np
from holocron.runtime import InferenceSession, session_options
feeds = dict(np.load(sys.argv[2]))
for _ in range(2):
    options = session_options(intra_op_num_threads=1, log_severity_level=int(sys.argv[3]))
    InferenceSession(sys.argv[1], sess_options=options).run(None, feeds)
"""


def _two_sessions_stderr(tmp_path: Path, library: Path, driver: str | None, severity: int) -> str:
    rng = np.random.default_rng(0)
    feeds = {
        "X": rng.standard_normal((1, 3, 5, 5)).astype(np.float32),
        "W": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
    }
    onnx.save(single_node_model("Add2d", feeds, {"pads": [1, 1, 1, 1]}), tmp_path / "model.onnx")
    np.savez(tmp_path / "feeds.npz", **feeds)
    env = {key: value for key, value in os.environ.items() if key != SIMULATE_ENV}
    env["HOLOCRON_RUNTIME_LIBRARY"] = str(library)
    if driver is not None:
        env[SIMULATE_ENV] = driver
    paths = [str(tmp_path / "model.onnx"), str(tmp_path / "feeds.npz")]
    result = subprocess.run(
        [sys.executable, "-c", _SESSIONS_SCRIPT, *paths, str(severity)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_too_old_driver_is_said_once_as_an_onnxruntime_warning(tmp_path: Path, library: Path, cuda_build: int) -> None:
    older = str((cuda_build // 1000 - 1) * 1000 + 80)
    stderr = _two_sessions_stderr(tmp_path, library, older, severity=2)
    assert stderr.count("holocron: the CUDA driver supports CUDA") == 1, stderr
    assert "only holocron's CPU kernels are registered" in stderr
    # Quiet when the session asks for errors only: the note is onnxruntime's to show, never printed by the library.
    assert "holocron: " not in _two_sessions_stderr(tmp_path, library, older, severity=3)
    assert "holocron: " not in _two_sessions_stderr(tmp_path, library, str(cuda_build), severity=0)


def test_no_driver_is_information_not_shown_by_default(tmp_path: Path, library: Path, cuda_build: int) -> None:
    assert "holocron: " not in _two_sessions_stderr(tmp_path, library, "0", severity=2)
    assert _two_sessions_stderr(tmp_path, library, "0", severity=1).count("holocron: no CUDA driver found") == 1
