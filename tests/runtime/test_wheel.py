"""The wheel installs and runs on its own, on every CPython it is tagged for, without torch.

The wheel (built from this checkout, or taken from ``HOLOCRON_WHEEL``) is tagged ``py3-none-<platform>``: its kernel
library links no Python. For each of Python 3.10 to 3.13 found on the machine (the running interpreter, pyenv's
versions, ``pythonX.Y`` on ``PATH``; a missing one is skipped with a message naming it), a fresh virtual environment
gets the wheel with ``--no-deps`` plus numpy, onnxruntime and onnx only, the serving install. Run from a neutral
folder, torch is not importable there, and the kernel library computes an Add2d node (which has no fallback function,
so only the kernel can run it) like a numpy reference, through ``InferenceSession`` and ``create_session``.

Marked ``wheel`` (deselect with ``-m "not wheel"``): building the wheel reuses the editable install's CMake build
folder (``make setup``), so it only packs when the library is already built. The environments need numpy,
onnxruntime and onnx wheels for each Python (pip's cache keeps them after the first run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[2]
WHEEL_ENV = "HOLOCRON_WHEEL"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")

# Runs inside the fresh environment: the model through holocron.runtime's sessions, and what the environment holds.
RUN_SCRIPT = """
import importlib.metadata, importlib.util, json, sys
import numpy as np
import holocron.runtime
assert importlib.util.find_spec("torch") is None, "torch is importable"
try:
    import torch
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("import torch succeeded")
feeds = dict(np.load(sys.argv[2]))
(y,) = holocron.runtime.InferenceSession(sys.argv[1]).run(None, feeds)
session, with_kernels = holocron.runtime.create_session(sys.argv[1])
(y2,) = session.run(None, feeds)
np.save(sys.argv[3], y)
np.save(sys.argv[3].replace(".npy", "_create_session.npy"), y2)
print(json.dumps({
    "package": holocron.runtime.__file__,
    "library": str(holocron.runtime.library_path()),
    "with_kernels": with_kernels,
    "torch_loaded": "torch" in sys.modules,
    "python": sys.version.split()[0],
    "versions": {name: importlib.metadata.version(name) for name in ("numpy", "onnxruntime", "onnx")},
}))
"""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _neutral_env() -> dict[str, str]:
    """This environment without what would point the fresh one back at the checkout."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HOLOCRON_RUNTIME_LIBRARY")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel named by ``HOLOCRON_WHEEL``, or one built from this checkout."""
    if os.environ.get(WHEEL_ENV):
        path = Path(os.environ[WHEEL_ENV])
        assert path.is_file(), f"{WHEEL_ENV}={path} is not a file"
        return path
    # The headers `make setup` uses: the same CMake configuration as the editable install's, so nothing recompiles.
    headers = _run(["bash", "scripts/fetch_ort_headers.sh", "build/ort-headers"], cwd=REPO, timeout=300).stdout
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        cwd=REPO,
        env={**os.environ, "ONNXRUNTIME_INCLUDE_DIR": headers.strip()},
        timeout=900,
    )
    (path,) = out.glob("holocron-*.whl")
    return path


def find_python(version: str) -> str | None:
    """An interpreter of CPython ``version`` (``"3.12"``): this one, a pyenv version, or ``pythonX.Y`` on ``PATH``."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    candidates: list[str] = []
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for folder in sorted(Path(pyenv_root, "versions").glob(f"{version}.*"), reverse=True):
        candidates.append(str(folder / "bin" / f"python{version}"))
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        try:
            found = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except OSError:
            continue
        if found.returncode == 0 and found.stdout.strip() == version:
            return candidate
    return None


def _fresh_venv(python: str, path: Path) -> Path:
    """A new virtual environment of ``python`` (no pip inside: this environment's pip installs into it)."""
    _run([python, "-m", "venv", "--without-pip", str(path)], timeout=120)
    return path / "bin" / "python"


def _pip_install(python: Path, *arguments: str) -> None:
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *arguments], timeout=900)


def add2d_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """``B[o] - sum_{c, i, j} |X[c, y + i, x + j] - W[o, c, i, j]|`` over the zero-padded input, stride 1."""
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, w.shape[2:], axis=(2, 3))  # N, C, H, W, kH, kW
    distance = np.abs(windows[:, None] - w.astype(np.float64)[None, :, :, None, None]).sum(axis=(2, 5, 6))
    return b.astype(np.float64)[None, :, None, None] - distance


def test_wheel_is_tagged_for_every_cpython(wheel: Path) -> None:
    """``py3-none-<platform>``: one wheel for all CPython versions, since the library uses no Python API."""
    _, _, python_tag, abi_tag, platform_tag = wheel.stem.split("-")
    assert (python_tag, abi_tag) == ("py3", "none"), wheel.name
    assert platform_tag.startswith(("linux_", "manylinux")), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        wheel_file = next(name for name in names if name.endswith(".dist-info/WHEEL"))
        tags = [
            line.split(":", 1)[1].strip() for line in archive.read(wheel_file).decode().splitlines() if "Tag:" in line
        ]
    assert "holocron/runtime/libholocron_ort.so" in names
    assert tags and all(tag.startswith("py3-none-") for tag in tags), tags
    assert not [name for name in names if name.endswith((".cc", ".cu", ".h", "CMakeLists.txt"))]


@pytest.mark.parametrize("version", PYTHONS)
def test_wheel_runs_add2d_without_torch(version: str, wheel: Path, library: Path, tmp_path: Path) -> None:
    python = find_python(version)
    if python is None:
        pytest.skip(f"Python {version} is not on this machine (looked for pyenv's {version}.* and python{version})")
    venv = tmp_path / "venv"
    venv_python = _fresh_venv(python, venv)
    _pip_install(venv_python, "--no-deps", str(wheel))
    _pip_install(venv_python, "numpy", "onnxruntime", "onnx")

    rng = np.random.default_rng(0)
    feeds = {
        "X": rng.standard_normal((2, 3, 6, 5)).astype(np.float32),
        "W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "B": rng.standard_normal(4).astype(np.float32),
    }
    # No fallback function: only holocron's kernel can run this node. IR version 10: what every onnxruntime >= 1.20
    # reads (the environment gets the newest onnxruntime with a wheel for its Python, older on older Pythons).
    model = single_node_model("Add2d", feeds, {"pads": [1, 1, 1, 1]})
    model.ir_version = 10
    onnx.save(model, tmp_path / "add2d.onnx")
    np.savez(tmp_path / "feeds.npz", **feeds)
    neutral = tmp_path / "neutral"
    neutral.mkdir()
    result = _run(
        [str(venv_python), "-c", RUN_SCRIPT, str(tmp_path / "add2d.onnx"), str(tmp_path / "feeds.npz"), "y.npy"],
        cwd=neutral,
        env=_neutral_env(),
        timeout=300,
    )

    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"Python {report['python']}: {report['versions']}")  # the combination, for `pytest -s`
    assert report["python"].startswith(f"{version}."), report
    assert Path(report["package"]).is_relative_to(venv), report
    assert Path(report["library"]).is_relative_to(venv), report
    assert report["with_kernels"] is True, report
    assert report["torch_loaded"] is False, report
    expected = add2d_reference(feeds["X"], feeds["W"], feeds["B"], pad=1)
    np.testing.assert_allclose(np.load(neutral / "y.npy"), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.load(neutral / "y_create_session.npy"), expected, rtol=1e-4, atol=1e-5)


def test_missing_library_message_names_the_wheel(wheel: Path, tmp_path: Path) -> None:
    """A wheel install without its library says so and how to reinstall, not how to build a checkout."""
    venv_python = _fresh_venv(sys.executable, tmp_path / "venv")
    _pip_install(venv_python, "--no-deps", str(wheel))
    script = (
        "import pathlib, holocron.runtime as r\n"
        "pathlib.Path(r.library_path()).unlink()\n"
        "try:\n    r.library_path()\nexcept r.RuntimeNotBuiltError as e:\n    print(e)\n"
    )
    message = _run([str(venv_python), "-c", script], cwd=tmp_path, env=_neutral_env(), timeout=120).stdout
    assert "wheel" in message and str(wheel) in message, message
    assert "--force-reinstall" in message, message
    assert "make setup" not in message and "pip install -e" not in message, message
