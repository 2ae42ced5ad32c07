"""holocron.runtime: the onnxruntime custom-op library for the ``holocron`` domain and session helpers.

The library (built from ``runtime/src`` when the package is installed) registers float32 kernels for the ops of
``holocron/ops/contract.py`` (``Add2d``, ``Involution2d``, ``Lambda``). A model exported by holocron also carries a
standard-ONNX function for each op: a plain onnxruntime session inlines those, a session from this module runs the
kernels instead. :func:`create_session` opens either kind; it is the one place holocron opens onnxruntime sessions.

Example::

    from holocron.runtime import InferenceSession

    session = InferenceSession("model.onnx")
    (y,) = session.run(None, {"input": x})
"""

from ._library import LIBRARY_ENV, RuntimeNotBuiltError, is_available, library_path
from ._session import InferenceSession, create_session, register_library, session_options

__all__ = [
    "LIBRARY_ENV",
    "InferenceSession",
    "RuntimeNotBuiltError",
    "create_session",
    "is_available",
    "library_path",
    "register_library",
    "session_options",
]
