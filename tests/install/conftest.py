"""The install tests' view of the built kernel library (as ``tests/runtime``'s ``library`` fixture)."""

import os
from pathlib import Path

import pytest

from holocron.runtime import RuntimeNotBuiltError, library_path

REQUIRE_ENV = "HOLOCRON_REQUIRE_RUNTIME"


@pytest.fixture(scope="session")
def library() -> Path:
    """The built custom-op library; skips (or fails under ``HOLOCRON_REQUIRE_RUNTIME=1``) when it is missing."""
    try:
        return Path(library_path())
    except RuntimeNotBuiltError as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but the runtime library is missing: {error}")
        pytest.skip(f"holocron runtime library not built: {error}")
