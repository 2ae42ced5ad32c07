"""``library_path()``'s message when the kernel library is missing fits how holocron was installed.

A checkout (this editable install) is told about ``make setup``; an install that pip built from an sdist without the
library (``HOLOCRON_BUILD_RUNTIME=OFF`` stands in for a machine without compiler or headers) is told to reinstall that
sdist with the headers, and never about the checkout's scripts. The wheel case is in ``tests/runtime/test_wheel.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from holocron.runtime import _library

REPO = Path(__file__).resolve().parents[2]

MESSAGE_SCRIPT = """
import holocron.runtime as r
try:
    r.library_path()
except r.RuntimeNotBuiltError as error:
    print(error)
else:
    raise SystemExit("the library was found")
"""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def test_checkout_message_names_make_setup() -> None:
    message = _library._missing_library_message()
    assert "checkout" in message and str(REPO) in message, message
    assert "make setup" in message and "scripts/fetch_ort_headers.sh" in message, message


def test_override_that_is_not_a_file_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_library.LIBRARY_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(_library.RuntimeNotBuiltError, match=r"HOLOCRON_RUNTIME_LIBRARY=.*missing\.so.* not a file"):
        _library.library_path()
    monkeypatch.setattr(_library, "packaged_file", lambda package, names: None)
    with pytest.raises(_library.RuntimeNotBuiltError, match=r"no library is installed either: .*make setup"):
        _library.library_path()


@pytest.mark.wheel
def test_sdist_install_without_library_says_how_to_rebuild_it(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    _run([sys.executable, "-m", "venv", str(tools)], timeout=300)
    _run([str(tools / "bin" / "python"), "-m", "pip", "install", "-q", "scikit-build-core"], timeout=600)
    build = "import sys, scikit_build_core.build as b; print(b.build_sdist(sys.argv[1]))"
    name = _run([str(tools / "bin" / "python"), "-c", build, str(tmp_path)], cwd=REPO, timeout=600).stdout.split()[-1]
    sdist = tmp_path / name
    assert sdist.is_file() and sdist.name.endswith(".tar.gz"), name

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--config-settings=cmake.define.HOLOCRON_BUILD_RUNTIME=OFF",
            str(sdist),
        ],
        timeout=900,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HOLOCRON_RUNTIME_LIBRARY")}
    message = _run([str(python), "-c", MESSAGE_SCRIPT], cwd=tmp_path, env=env, timeout=120).stdout
    assert "built from source" in message and str(sdist) in message, message
    assert "ONNXRUNTIME_INCLUDE_DIR" in message and "--force-reinstall" in message, message
    assert "make setup" not in message and "pip install -e" not in message, message
