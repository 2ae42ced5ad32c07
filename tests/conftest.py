"""Test-suite setup shared by every test folder.

Puts this folder on ``sys.path`` so that test modules and the folder conftests import the shared helpers as
``helpers`` (pytest runs with ``--import-mode=importlib``, which adds no test folder to ``sys.path`` itself), and
registers the suite's markers and the ``library`` fixture (the built kernel library).
"""

import os
import sys
from pathlib import Path

import pytest

from holocron.runtime import RuntimeNotBuiltError, library_path

#: ``HOLOCRON_REQUIRE_RUNTIME=1`` (``make test``, ``make matrix``) turns a missing onnxruntime kernel library from a
#: skip into a failure.
REQUIRE_ENV = "HOLOCRON_REQUIRE_RUNTIME"
#: What the run expects of the torch op library: ``required`` (``make test``, the native half of ``make matrix``: a
#: missing library fails) or ``absent`` (the matrix half run where it is not built: the ops must run pure torch);
#: unset, a missing library skips the tests that need it.
TORCH_LIBRARY_ENV = "HOLOCRON_TEST_TORCH_LIBRARY"

_TESTS = str(Path(__file__).parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wheel: builds and installs the wheel into a fresh virtual environment (deselect: -m 'not wheel')"
    )


@pytest.fixture(scope="session")
def library() -> Path:
    """The built custom-op library; skips (or fails under ``HOLOCRON_REQUIRE_RUNTIME=1``) when it is missing."""
    try:
        return Path(library_path())
    except RuntimeNotBuiltError as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but the runtime library is missing: {error}")
        pytest.skip(f"holocron runtime library not built: {error}")


@pytest.fixture(scope="session")
def torch_library() -> Path:
    """The torch op library holocron.ops loaded; skips (or fails under ``HOLOCRON_REQUIRE_RUNTIME=1``) when the ops
    run their pure-torch kernels (not built, or ``HOLOCRON_PURE_TORCH=1``)."""
    from holocron.ops import _native

    if os.environ.get(_native.PURE_TORCH_ENV) == "1":
        pytest.skip(f"{_native.PURE_TORCH_ENV}=1: the ops run their pure-torch kernels")
    try:
        path = Path(_native.torch_library_path())
    except _native.TorchLibraryNotBuiltError as error:
        if os.environ.get(TORCH_LIBRARY_ENV) == "required":
            pytest.fail(f"{TORCH_LIBRARY_ENV}=required but the torch op library is missing: {error}")
        pytest.skip(f"holocron torch op library not built: {error}")
    if not _native.is_loaded():
        pytest.fail(f"the torch op library {path} exists but holocron.ops did not load it (see its warning)")
    return path
