"""Every command of README's "Install" section, run exactly as written, each install in a fresh virtual environment.

The commands are read from the README (the test fails when one appears that it does not know, or one it knows is
gone), run with ``bash`` from the repository root with the fresh environment's ``bin`` first on ``PATH`` (an
activated environment), then checked: the serving install has no torch and runs a kernel-only model; the others
export a model with a holocron layer and verify it against eager PyTorch on the kernels, from a neutral folder.

torch comes from ``HOLOCRON_TEST_TORCH`` (default 2.13.0, the development release) through ``PIP_CONSTRAINT``, so
the environments do not pull the newest release in the range. Marked ``wheel`` like ``tests/runtime/test_wheel.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[2]
TORCH_ENV = "HOLOCRON_TEST_TORCH"

MAKE_WHEEL = "make wheel"
SERVING = "pip install dist/holocron-*.whl onnxruntime"
WHEEL_EXPORT = 'pip install dist/holocron-*.whl "holocron[export]"'
CHECKOUT_EXPORT = 'pip install ".[export]"'

# Serving: holocron.runtime alone, torch absent, an Add2d node that only the kernel can run.
SERVING_SCRIPT = """
import importlib.util, json, sys
import numpy as np
import holocron.runtime
feeds = dict(np.load(sys.argv[2]))
(y,) = holocron.runtime.InferenceSession(sys.argv[1]).run(None, feeds)
np.save("y.npy", y)
print(json.dumps({"torch": importlib.util.find_spec("torch") is not None, "package": holocron.runtime.__file__}))
"""

# Training and export: a holocron layer exported to ONNX and verified on the kernels.
EXPORT_SCRIPT = """
import json, tempfile
from pathlib import Path
import torch
import holocron.runtime
from holocron import nn as hnn
from holocron.export import to_onnx, verify
model = torch.nn.Sequential(hnn.Add2d(4, 4, 3, padding=1), torch.nn.GroupNorm(2, 4)).eval()
x = torch.randn(1, 4, 8, 8)
path = to_onnx(model, (x,), Path(tempfile.mkdtemp()) / "model.onnx")
report = verify(model, path, [x])
print(json.dumps({"passed": report.passed, "path": report.execution_path, "ops": list(report.holocron_ops),
                  "package": holocron.runtime.__file__, "torch": torch.__version__}))
"""


def install_commands(readme: str) -> list[str]:
    """The lines of the ``bash`` blocks of README's "## Install" section, as written."""
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _command(line: str) -> str:
    """``line`` without its trailing comment."""
    return line.split("  #", 1)[0].strip()


COMMANDS = {_command(line): line for line in install_commands((REPO / "README.md").read_text())}


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def _run_readme_line(command: str, venv: Path | None, tmp_path: Path) -> None:
    """Run README's line for ``command`` as written, in the activated ``venv`` (or the test's environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HOLOCRON_RUNTIME_LIBRARY", "VIRTUAL_ENV")}
    if venv is not None:
        constraints = tmp_path / "constraints.txt"
        constraints.write_text(f"torch=={os.environ.get(TORCH_ENV, '2.13.0')}\n")
        env |= {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"}
        env["PIP_CONSTRAINT"] = str(constraints)
        # A build from the checkout compiles in its own folder, not in the editable install's (whose CMake cache
        # would then name this environment's Python, and the next `make setup` would rebuild everything).
        env["SKBUILD_BUILD_DIR"] = str(tmp_path / "cmake-build")
        # The CUDA kernels are built and checked by `make setup`; this install checks the command and the CPU build.
        env["SKBUILD_CMAKE_DEFINE"] = "HOLOCRON_CUDA=OFF"
    _run(["bash", "-c", COMMANDS[command]], cwd=REPO, env=env, timeout=1800)


def _fresh_venv(path: Path) -> Path:
    _run([sys.executable, "-m", "venv", str(path)], timeout=300)
    return path


def _neutral(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "neutral"
    folder.mkdir()
    return folder, {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HOLOCRON_RUNTIME_LIBRARY")}


def test_the_test_knows_every_install_command() -> None:
    assert set(COMMANDS) == {MAKE_WHEEL, SERVING, WHEEL_EXPORT, CHECKOUT_EXPORT}, list(COMMANDS)


@pytest.fixture(scope="module")
def made_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _run_readme_line(MAKE_WHEEL, None, tmp_path_factory.mktemp("make-wheel"))
    (wheel,) = (REPO / "dist").glob("holocron-*.whl")
    return wheel


def test_make_wheel_writes_one_manylinux_wheel_for_every_cpython(made_wheel: Path) -> None:
    assert re.fullmatch(
        r"holocron-[\d.]+-py3-none-manylinux_\d+_\d+_x86_64(\.manylinux_\d+_\d+_x86_64)*\.whl", made_wheel.name
    )


def test_serving_install_has_no_torch_and_runs_the_kernels(made_wheel: Path, library: Path, tmp_path: Path) -> None:
    venv = _fresh_venv(tmp_path / "venv")
    _run_readme_line(SERVING, venv, tmp_path)
    rng = np.random.default_rng(1)
    feeds = {
        "X": rng.standard_normal((1, 2, 5, 5)).astype(np.float32),
        "W": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
        "B": rng.standard_normal(3).astype(np.float32),
    }
    onnx.save(single_node_model("Add2d", feeds, {"pads": [1, 1, 1, 1]}), tmp_path / "add2d.onnx")
    np.savez(tmp_path / "feeds.npz", **feeds)
    neutral, env = _neutral(tmp_path)
    python = str(venv / "bin" / "python")
    out = _run(
        [python, "-c", SERVING_SCRIPT, str(tmp_path / "add2d.onnx"), str(tmp_path / "feeds.npz")],
        cwd=neutral,
        env=env,
        timeout=300,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["torch"] is False, report
    assert Path(report["package"]).is_relative_to(venv), report
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(feeds["X"], ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3)
    )
    expected = feeds["B"][None, :, None, None] - np.abs(windows[:, None] - feeds["W"][None, :, :, None, None]).sum(
        axis=(2, 5, 6)
    )
    np.testing.assert_allclose(np.load(neutral / "y.npy"), expected, rtol=1e-4, atol=1e-4)


def _check_export(venv: Path, tmp_path: Path) -> None:
    neutral, env = _neutral(tmp_path)
    out = _run([str(venv / "bin" / "python"), "-c", EXPORT_SCRIPT], cwd=neutral, env=env, timeout=900)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["passed"] is True, report
    assert report["path"] == "holocron-kernels" and report["ops"] == ["Add2d"], report
    assert Path(report["package"]).is_relative_to(venv), report


def test_wheel_with_the_export_extra_exports(made_wheel: Path, library: Path, tmp_path: Path) -> None:
    venv = _fresh_venv(tmp_path / "venv")
    _run_readme_line(WHEEL_EXPORT, venv, tmp_path)
    _check_export(venv, tmp_path)


def test_checkout_install_with_the_export_extra_exports(library: Path, tmp_path: Path) -> None:
    venv = _fresh_venv(tmp_path / "venv")
    _run_readme_line(CHECKOUT_EXPORT, venv, tmp_path)
    _check_export(venv, tmp_path)
