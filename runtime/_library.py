"""Where holocron's onnxruntime custom-op library is, and whether it was built."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

__all__ = ["LIBRARY_ENV", "RuntimeNotBuiltError", "is_available", "library_path"]

#: Environment variable naming a library file to use instead of the installed one (a development build, say).
LIBRARY_ENV = "HOLOCRON_RUNTIME_LIBRARY"

# The file names CMake gives the library (a MODULE target named holocron_ort) on Linux/macOS and on Windows.
_LIBRARY_NAMES = ("libholocron_ort.so", "libholocron_ort.dylib", "holocron_ort.dll")

_HOW_TO_BUILD = (
    "The package builds it during `pip install` when a C++ compiler and the onnxruntime C/C++ headers are found: "
    "run `scripts/fetch_ort_headers.sh` (it prints an include folder), then "
    '`ONNXRUNTIME_INCLUDE_DIR=<that folder> pip install -e ".[test]"` (or `make setup`), '
    f"or point {LIBRARY_ENV} at a built library file."
)


class RuntimeNotBuiltError(FileNotFoundError):
    """holocron's custom-op library is not installed (the package was built without a compiler or headers)."""


def library_path() -> str:
    """Path of the onnxruntime custom-op library registering the ``holocron`` domain.

    The library ships inside the ``holocron.runtime`` package (normal and editable installs); the environment
    variable ``HOLOCRON_RUNTIME_LIBRARY`` overrides it.

    Returns:
        The library file's path as a ``str``, as ``onnxruntime.SessionOptions.register_custom_ops_library`` takes
        it: ``options.register_custom_ops_library(holocron.runtime.library_path())``.

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to build it.
    """
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise RuntimeNotBuiltError(f"{LIBRARY_ENV}={override!r} is not a file. {_HOW_TO_BUILD}")
        return str(path)
    package = importlib.resources.files(__package__ or "holocron.runtime")
    for name in _LIBRARY_NAMES:
        candidate = package / name
        if candidate.is_file():
            return os.fspath(Path(os.fspath(candidate)))  # type: ignore[arg-type]
    raise RuntimeNotBuiltError(f"holocron's onnxruntime custom-op library is not installed. {_HOW_TO_BUILD}")


def is_available() -> bool:
    """Whether :func:`library_path` finds the custom-op library."""
    try:
        library_path()
    except RuntimeNotBuiltError:
        return False
    return True
