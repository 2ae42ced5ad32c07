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

#: ``HOLOCRON_REQUIRE_RUNTIME=1`` (``make test``) turns a missing kernel library from a skip into a failure.
REQUIRE_ENV = "HOLOCRON_REQUIRE_RUNTIME"

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
