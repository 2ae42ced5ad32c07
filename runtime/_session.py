"""onnxruntime sessions with holocron's custom-op library registered."""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from ._library import library_path

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["InferenceSession", "register_library", "session_options"]

# Options the library was registered into: registering twice makes session creation fail ("Domain already set").
_registered: weakref.WeakSet[onnxruntime.SessionOptions] = weakref.WeakSet()


def register_library(options: onnxruntime.SessionOptions) -> onnxruntime.SessionOptions:
    """Register holocron's custom-op library into ``options`` (once) and return them.

    Raises:
        RuntimeNotBuiltError: the library was not built.
    """
    if options not in _registered:
        options.register_custom_ops_library(str(library_path()))
        _registered.add(options)
    return options


def session_options(
    intra_op_num_threads: int | None = None,
    inter_op_num_threads: int | None = None,
    log_severity_level: int | None = None,
) -> onnxruntime.SessionOptions:
    """New ``onnxruntime.SessionOptions`` with the ``holocron`` custom-op domain registered.

    Args:
        intra_op_num_threads: threads of the intra-op pool, which the holocron kernels also use; onnxruntime's
            default (one per physical core) when ``None``.
        inter_op_num_threads: threads running independent nodes concurrently; onnxruntime's default when ``None``.
        log_severity_level: onnxruntime log level (0 verbose ... 4 fatal); its default when ``None``.

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to build it.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if intra_op_num_threads is not None:
        options.intra_op_num_threads = intra_op_num_threads
    if inter_op_num_threads is not None:
        options.inter_op_num_threads = inter_op_num_threads
    if log_severity_level is not None:
        options.log_severity_level = log_severity_level
    return register_library(options)


def InferenceSession(  # noqa: N802 - mirrors onnxruntime.InferenceSession
    path_or_bytes: str | bytes | os.PathLike[str],
    providers: list[str] | None = None,
    sess_options: onnxruntime.SessionOptions | None = None,
    **kwargs: Any,
) -> onnxruntime.InferenceSession:
    """``onnxruntime.InferenceSession`` that runs the ``holocron`` ops with holocron's kernels.

    Args:
        path_or_bytes: ONNX model file or serialized model.
        providers: execution providers, in order of preference; CPU only when ``None``.
        sess_options: options to use; the library is registered into them (once) when it is not already.
        **kwargs: passed on to ``onnxruntime.InferenceSession`` (``provider_options``, ...).

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to build it.
    """
    import onnxruntime

    options = register_library(sess_options) if sess_options is not None else session_options()
    if isinstance(path_or_bytes, os.PathLike):
        path_or_bytes = os.fspath(path_or_bytes)
    return onnxruntime.InferenceSession(
        path_or_bytes, sess_options=options, providers=providers or ["CPUExecutionProvider"], **kwargs
    )
