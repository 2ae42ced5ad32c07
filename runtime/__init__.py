"""holocron.runtime: the onnxruntime custom-op library for the ``holocron`` domain and session helpers.

The library (built from ``runtime/src`` when the package is installed) registers float32 kernels for the ops of
``holocron/contract.py`` (``Add2d``, ``Involution2d``, ``Lambda``). A model exported by holocron also carries a
standard-ONNX function for each op: a plain onnxruntime session inlines those, a session from this module runs the
kernels instead. :func:`create_session` opens either kind; it is the one place holocron opens onnxruntime sessions.

Domain versions: onnxruntime cannot tell a custom-op kernel which version of its domain a model imports, so
:func:`create_session` checks it. A model importing ``holocron`` at a version other than the kernels' (1) opens
without the library when it carries a function for each of its ``holocron`` op types, and raises
:class:`UnsupportedDomainVersionError` (naming the ops and both versions) otherwise. Registering the library by hand
(``so.register_custom_ops_library(library_path())``, or :func:`register_library` / :func:`session_options` with your
own ``onnxruntime.InferenceSession``) skips this check: such a session runs the version-1 kernels whatever the model
imports.

onnxruntime ships as several distributions that install the same ``onnxruntime`` module (``onnxruntime`` for CPU,
``onnxruntime-gpu``, ...). With two of them installed, the one installed last owns the module and uninstalling either
breaks the other; importing this module then warns with :class:`OnnxruntimeConflictWarning`, naming the fix.

Example::

    from holocron.runtime import InferenceSession

    session = InferenceSession("model.onnx")
    (y,) = session.run(None, {"input": x})
"""

import importlib.metadata
import warnings

from ._library import LIBRARY_ENV, RuntimeNotBuiltError, is_available, library_path
from ._session import (
    InferenceSession,
    UnsupportedDomainVersionError,
    create_session,
    register_library,
    session_options,
)

__all__ = [
    "LIBRARY_ENV",
    "InferenceSession",
    "OnnxruntimeConflictWarning",
    "RuntimeNotBuiltError",
    "UnsupportedDomainVersionError",
    "create_session",
    "is_available",
    "library_path",
    "register_library",
    "session_options",
]


#: Distributions that each install the ``onnxruntime`` module; at most one may be installed.
_ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")


class OnnxruntimeConflictWarning(UserWarning):
    """More than one onnxruntime distribution is installed; they overwrite each other's ``onnxruntime`` module."""


def _warn_on_onnxruntime_conflict() -> None:
    """Warn when two or more of :data:`_ONNXRUNTIME_DISTRIBUTIONS` are installed."""
    installed = {}
    for name in _ONNXRUNTIME_DISTRIBUTIONS:
        try:
            installed[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    if len(installed) < 2:
        return
    found = ", ".join(f"{name} {version}" for name, version in installed.items())
    names = " ".join(installed)
    keep = "onnxruntime-gpu" if "onnxruntime-gpu" in installed else next(iter(installed))
    warnings.warn(
        f"several onnxruntime distributions are installed ({found}): they install the same `onnxruntime` module, the "
        "one installed last wins, and uninstalling one breaks the other. Keep exactly one: "
        f"`pip uninstall -y {names} && pip install {keep}` (or `pip install onnxruntime` last for CPU only).",
        OnnxruntimeConflictWarning,
        stacklevel=3,
    )


_warn_on_onnxruntime_conflict()
