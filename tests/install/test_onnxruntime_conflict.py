"""Importing ``holocron.runtime`` warns when two onnxruntime distributions are installed side by side.

Each case runs a fresh interpreter whose ``sys.path`` starts with a folder of fake distributions (a
``<name>-<version>.dist-info/METADATA`` is all ``importlib.metadata`` needs), so nothing is installed for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

SCRIPT = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import holocron.runtime
print(json.dumps([[w.category.__module__ + "." + w.category.__name__, str(w.message)] for w in caught]))
"""


def _fake_distribution(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _import_warnings(fakes: Path, cwd: Path) -> list[tuple[str, str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fakes), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [tuple(item) for item in json.loads(result.stdout.strip().splitlines()[-1])]


def _installed_onnxruntime() -> str:
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            version(name)
        except PackageNotFoundError:
            continue
        return name
    pytest.skip("no onnxruntime distribution installed")


def test_gpu_next_to_cpu_warns_with_the_fix(tmp_path: Path) -> None:
    installed = _installed_onnxruntime()
    other = "onnxruntime-gpu" if installed == "onnxruntime" else "onnxruntime"
    _fake_distribution(tmp_path / "fakes", other, "9.9.9")
    caught = _import_warnings(tmp_path / "fakes", tmp_path)
    conflicts = [message for category, message in caught if category == "holocron.runtime.OnnxruntimeConflictWarning"]
    assert len(conflicts) == 1, caught
    assert f"{other} 9.9.9" in conflicts[0] and f"{installed} " in conflicts[0], conflicts
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in conflicts[0], conflicts


def test_one_distribution_does_not_warn(tmp_path: Path) -> None:
    _installed_onnxruntime()
    (tmp_path / "fakes").mkdir()
    _fake_distribution(tmp_path / "fakes", "onnx-something-else", "1.0")
    caught = _import_warnings(tmp_path / "fakes", tmp_path)
    assert not [c for c, _ in caught if c.endswith("OnnxruntimeConflictWarning")], caught
