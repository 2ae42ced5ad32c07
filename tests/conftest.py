"""Test-suite setup shared by every test folder.

Puts this folder on ``sys.path`` so that test modules and the folder conftests import the shared helpers as
``helpers`` (pytest runs with ``--import-mode=importlib``, which adds no test folder to ``sys.path`` itself), and
registers the suite's markers.
"""

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wheel: builds and installs the wheel into a fresh virtual environment (deselect: -m 'not wheel')"
    )
