"""onnxruntime sessions, with holocron's custom-op library registered or without it: the one place they are opened."""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._library import is_available, library_path

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["InferenceSession", "create_session", "register_library", "session_options"]

# Options the library was registered into: registering twice makes session creation fail ("Domain already set").
_registered: weakref.WeakSet[onnxruntime.SessionOptions] = weakref.WeakSet()


def register_library(options: onnxruntime.SessionOptions) -> onnxruntime.SessionOptions:
    """Register holocron's custom-op library into ``options`` (once) and return them.

    Args:
        options: the session options to register the library into.

    Returns:
        ``options``.

    Raises:
        RuntimeNotBuiltError: the library was not built.
    """
    if options not in _registered:
        options.register_custom_ops_library(library_path())
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

    Returns:
        The options.

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


def create_session(
    path_or_bytes: str | bytes | os.PathLike[str],
    *,
    use_kernels: bool | None = None,
    providers: Sequence[str] | None = None,
    sess_options: onnxruntime.SessionOptions | None = None,
    log_severity_level: int | None = None,
    **kwargs: Any,
) -> tuple[onnxruntime.InferenceSession, bool]:
    """Open an ``onnxruntime.InferenceSession``, with holocron's kernels or on the models' fallback functions.

    Args:
        path_or_bytes: ONNX model file or serialized model.
        use_kernels: True registers holocron's custom-op library (an error when it is not built), False opens a plain
            session (``holocron`` nodes then run their standard-ONNX fallback functions), None uses the library when
            :func:`is_available`.
        providers: execution providers, in order of preference; CPU only when ``None`` or empty.
        sess_options: options to use; with the kernels, the library is registered into them (once).
        log_severity_level: onnxruntime log level (0 verbose ... 4 fatal) set on the options; left as is when
            ``None``.
        **kwargs: passed on to ``onnxruntime.InferenceSession`` (``provider_options``, ...).

    Returns:
        The session and whether holocron's kernels are registered in it.

    Raises:
        RuntimeNotBuiltError: ``use_kernels=True`` but the library was not built; the message says how to build it.
    """
    import onnxruntime

    with_kernels = is_available() if use_kernels is None else use_kernels
    options = sess_options if sess_options is not None else onnxruntime.SessionOptions()
    if log_severity_level is not None:
        options.log_severity_level = log_severity_level
    if with_kernels:
        register_library(options)
    if isinstance(path_or_bytes, os.PathLike):
        path_or_bytes = os.fspath(path_or_bytes)
    session = onnxruntime.InferenceSession(
        path_or_bytes, sess_options=options, providers=list(providers or ["CPUExecutionProvider"]), **kwargs
    )
    return session, with_kernels


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

    Returns:
        The session, from :func:`create_session` with ``use_kernels=True``.

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to build it.
    """
    session, _ = create_session(
        path_or_bytes, use_kernels=True, providers=providers, sess_options=sess_options, **kwargs
    )
    return session
