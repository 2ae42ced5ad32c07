"""holocron.runtime: the onnxruntime custom-op library for the ``holocron`` domain and session helpers.

The library (built from ``runtime/src`` when the package is installed) registers float32 kernels for the ops of
``holocron/ops/contract.py`` (``Add2d``, ``Involution2d``, ``Lambda``). A model exported by holocron also carries a
standard-ONNX function for each op: a plain onnxruntime session inlines those, a session from this module runs the
kernels instead. :func:`create_session` opens either kind; it is the one place holocron opens onnxruntime sessions.

Domain versions: onnxruntime cannot tell a custom-op kernel which version of its domain a model imports, so
:func:`create_session` checks it. A model importing ``holocron`` at a version other than the kernels' (1) opens
without the library when it carries a function for each of its ``holocron`` op types, and raises
:class:`UnsupportedDomainVersionError` (naming the ops and both versions) otherwise. Registering the library by hand
(``so.register_custom_ops_library(library_path())``, or :func:`register_library` / :func:`session_options` with your
own ``onnxruntime.InferenceSession``) skips this check: such a session runs the version-1 kernels whatever the model
imports.

Example::

    from holocron.runtime import InferenceSession

    session = InferenceSession("model.onnx")
    (y,) = session.run(None, {"input": x})
"""

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
    "RuntimeNotBuiltError",
    "UnsupportedDomainVersionError",
    "create_session",
    "is_available",
    "library_path",
    "register_library",
    "session_options",
]
