"""The wheel installs and runs on its own: built (or taken from ``HOLOCRON_WHEEL``), installed into a fresh virtual
environment and run from a neutral folder, its kernel library computes an Add2d node like a numpy reference.

Marked ``wheel`` (deselect with ``-m "not wheel"``): building the wheel reuses the editable install's CMake build
folder (``make setup``), so it only packs when the library is already built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[2]
WHEEL_ENV = "HOLOCRON_WHEEL"

# Runs inside the fresh environment: the model through holocron.runtime's session, and where holocron came from.
RUN_SCRIPT = """
import json, sys
import numpy as np
import holocron.runtime
(y,) = holocron.runtime.InferenceSession(sys.argv[1]).run(None, dict(np.load(sys.argv[2])))
np.save(sys.argv[3], y)
print(json.dumps({"package": holocron.runtime.__file__, "library": str(holocron.runtime.library_path())}))
"""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _wheel(tmp_path: Path) -> Path:
    """The wheel named by ``HOLOCRON_WHEEL``, or one built from this checkout."""
    if os.environ.get(WHEEL_ENV):
        wheel = Path(os.environ[WHEEL_ENV])
        assert wheel.is_file(), f"{WHEEL_ENV}={wheel} is not a file"
        return wheel
    # The headers `make setup` uses: the same CMake configuration as the editable install's, so nothing recompiles.
    headers = _run(["bash", "scripts/fetch_ort_headers.sh", "build/ort-headers"], cwd=REPO, timeout=300).stdout
    out = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        cwd=REPO,
        env={**os.environ, "ONNXRUNTIME_INCLUDE_DIR": headers.strip()},
        timeout=900,
    )
    (wheel,) = out.glob("holocron-*.whl")
    return wheel


def _fresh_venv(path: Path) -> Path:
    """A virtual environment without holocron that sees this environment's dependencies (through a ``.pth`` file
    listing their folders, so no ``.pth`` file of theirs, such as an editable holocron's, is processed)."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)], timeout=120)
    python = path / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    import numpy
    import onnxruntime
    import torch

    folders = dict.fromkeys(str(Path(module.__file__).parents[1]) for module in (numpy, onnxruntime, onnx, torch))
    Path(site, "_holocron_test_deps.pth").write_text("\n".join(folders) + "\n")
    return python


def add2d_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """``B[o] - sum_{c, i, j} |X[c, y + i, x + j] - W[o, c, i, j]|`` over the zero-padded input, stride 1."""
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, w.shape[2:], axis=(2, 3))  # N, C, H, W, kH, kW
    distance = np.abs(windows[:, None] - w.astype(np.float64)[None, :, :, None, None]).sum(axis=(2, 5, 6))
    return b.astype(np.float64)[None, :, None, None] - distance


def test_wheel_runs_add2d_in_a_fresh_environment(library: Path, tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        timeout=300,
    )

    rng = np.random.default_rng(0)
    feeds = {
        "X": rng.standard_normal((2, 3, 6, 5)).astype(np.float32),
        "W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "B": rng.standard_normal(4).astype(np.float32),
    }
    # No fallback function: only holocron's kernel can run this node.
    onnx.save(single_node_model("Add2d", feeds, {"pads": [1, 1, 1, 1]}), tmp_path / "add2d.onnx")
    np.savez(tmp_path / "feeds.npz", **feeds)
    neutral = tmp_path / "neutral"
    neutral.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HOLOCRON_RUNTIME_LIBRARY")}
    result = _run(
        [str(python), "-c", RUN_SCRIPT, str(tmp_path / "add2d.onnx"), str(tmp_path / "feeds.npz"), "y.npy"],
        cwd=neutral,
        env=env,
        timeout=300,
    )

    origin = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(origin["package"]).is_relative_to(venv), origin
    assert Path(origin["library"]).is_relative_to(venv), origin
    expected = add2d_reference(feeds["X"], feeds["W"], feeds["B"], pad=1)
    np.testing.assert_allclose(np.load(neutral / "y.npy"), expected, rtol=1e-4, atol=1e-5)
