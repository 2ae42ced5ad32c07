"""holocron's torch op library, ``libholocron_torch.so``: where it is, whether it is loaded, and loading it.

The library (``runtime/src/torch/library.cc``, built with the package when torch's headers are present) defines the
schemas of ``holocron::add2d``, ``holocron::involution2d`` and ``holocron::lambda_layer`` and registers their CPU
kernels: the float32/float16 kernels onnxruntime runs, through torch's stable C ABI, so one build loads on every
supported torch release. A process that never imports holocron can ``torch.ops.load_library`` it and run TorchScript
archives that call the ops. Importing :mod:`holocron.ops` loads it when it is built (see
:mod:`holocron.ops._library` for what Python adds on top); where it is not, or ``HOLOCRON_PURE_TORCH=1``, the ops are
defined in Python with their pure-torch kernels.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from holocron._package_files import packaged_file

__all__ = [
    "LIBRARY_ENV",
    "PURE_TORCH_ENV",
    "TorchLibraryNotBuiltError",
    "is_loaded",
    "load",
    "torch_library_path",
]

#: Environment variable naming a library file to use instead of the installed one (a development build, say).
LIBRARY_ENV = "HOLOCRON_TORCH_LIBRARY"
#: ``HOLOCRON_PURE_TORCH=1``: do not load the library; the ops run their pure-torch kernels.
PURE_TORCH_ENV = "HOLOCRON_PURE_TORCH"

# The file names CMake gives the library (a MODULE target named holocron_torch) on Linux/macOS and on Windows.
_LIBRARY_NAMES = ("libholocron_torch.so", "libholocron_torch.dylib", "holocron_torch.dll")
_OPS = ("add2d", "involution2d", "lambda_layer")

_loaded = False


class TorchLibraryNotBuiltError(FileNotFoundError):
    """holocron's torch op library is not installed (built without torch's headers or a C++ compiler)."""


def torch_library_path() -> str:
    """Path of the torch op library registering the ``holocron`` ops' schemas and CPU kernels.

    The library ships inside the ``holocron.ops`` package when the build found torch's headers (``pip install -v``
    prints why it did not); the environment variable ``HOLOCRON_TORCH_LIBRARY`` overrides it. Any process with torch
    >= 2.13 can load it, with or without holocron: ``torch.ops.load_library(holocron.ops.torch_library_path())``,
    then ``torch.jit.load`` of an archive that calls ``holocron::*`` ops (from Python or libtorch).

    Returns:
        The library file's path as a ``str``.

    Raises:
        TorchLibraryNotBuiltError: no library is installed, or ``HOLOCRON_TORCH_LIBRARY`` names no file.
    """
    override = os.environ.get(LIBRARY_ENV)
    if override:
        if not Path(override).is_file():
            raise TorchLibraryNotBuiltError(f"{LIBRARY_ENV}={override!r} is not a file")
        return override
    installed = packaged_file(__package__ or "holocron.ops", _LIBRARY_NAMES)
    if installed is None:
        raise TorchLibraryNotBuiltError(
            "holocron's torch op library (libholocron_torch.so) is not installed: the build skipped it (it needs a "
            "C++17 compiler and torch >= 2.13 importable by HOLOCRON_TORCH_PYTHON or the build's Python; `make "
            f"setup` provides both); point {LIBRARY_ENV} at a built library file to use one"
        )
    return installed


def _defined_elsewhere() -> bool:
    """Whether the ops' schemas are registered already (the library loaded before holocron was imported)."""
    try:
        return all(torch._C._dispatch_has_kernel_for_dispatch_key(f"holocron::{op}", "CPU") for op in _OPS)
    except RuntimeError:  # "operator holocron::<op> does not exist"
        return False


def load() -> bool:
    """Load the library unless ``HOLOCRON_PURE_TORCH=1`` or it is not built; return whether it is loaded.

    A library that is built but fails to load (a torch outside the supported range, say) is reported with a warning
    and the ops fall back to their pure-torch kernels. Schemas registered before holocron was imported (the
    library loaded by hand) count as loaded: Python can no longer define the ops itself.
    """
    global _loaded
    if _loaded:
        return True
    if _defined_elsewhere():
        _loaded = True
        return True
    if os.environ.get(PURE_TORCH_ENV) == "1":
        return False
    try:
        path = torch_library_path()
    except TorchLibraryNotBuiltError as error:
        if os.environ.get(LIBRARY_ENV):  # asked for a library that is not there: say so (not built: silent)
            warnings.warn(f"holocron: {error}; the ops use their pure-torch kernels", RuntimeWarning, stacklevel=2)
        return False
    try:
        torch.ops.load_library(path)
    except (OSError, RuntimeError) as error:
        warnings.warn(
            f"holocron: the torch op library {path} failed to load ({error}); the ops use their pure-torch kernels",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    _loaded = _defined_elsewhere()
    return _loaded


def is_loaded() -> bool:
    """Whether ``torch.ops.holocron.*`` run the library's CPU kernels (``False``: the pure-torch ones)."""
    return _loaded
