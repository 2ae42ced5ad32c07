"""onnxruntime sessions for exported models: with holocron's kernels when they are available, plain otherwise."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from types import ModuleType

import onnx
import onnxruntime

from .errors import ExportError, summarize_error

__all__ = ["DEFAULT_PROVIDERS", "create_session", "kernels_available"]

DEFAULT_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
#: onnxruntime log level "error": warnings about declared vs actual shapes of dynamic outputs are noise here.
_LOG_ERRORS_ONLY = 3


def _runtime() -> ModuleType | None:
    try:
        return importlib.import_module("holocron.runtime")
    except ImportError:
        return None


def kernels_available() -> bool:
    """Whether ``holocron.runtime`` is importable and its custom-op library is built."""
    runtime = _runtime()
    if runtime is None or not hasattr(runtime, "is_available"):
        return False
    return bool(runtime.is_available())


def create_session(
    model: onnx.ModelProto | bytes | str | os.PathLike[str],
    *,
    use_kernels: bool | None = None,
    providers: Sequence[str] | None = None,
) -> tuple[onnxruntime.InferenceSession, bool]:
    """Open an onnxruntime session on ``model``.

    Args:
        model: the ONNX model (proto, serialized bytes or file path).
        use_kernels: True requires holocron's kernels, False uses a plain onnxruntime session (holocron ops then run
            their fallback functions), None uses the kernels when available.
        providers: execution providers (default CPU).

    Returns:
        The session and whether holocron's kernels are registered in it.

    Raises:
        ExportError: ``use_kernels=True`` but the runtime library is unavailable, or onnxruntime rejects the model.
    """
    with_kernels = kernels_available() if use_kernels is None else use_kernels
    if with_kernels and not kernels_available():
        raise ExportError("use_kernels=True but holocron.runtime's custom-op library is not available (not built?)")
    source: bytes | str = (
        model.SerializeToString()
        if isinstance(model, onnx.ModelProto)
        else (model if isinstance(model, bytes) else os.fspath(model))
    )
    chosen = list(providers) if providers is not None else list(DEFAULT_PROVIDERS)
    try:
        if with_kernels:
            runtime = _runtime()
            assert runtime is not None  # checked by kernels_available()
            options = runtime.session_options(log_severity_level=_LOG_ERRORS_ONLY)
            session = runtime.InferenceSession(source, providers=chosen, sess_options=options)
        else:
            options = onnxruntime.SessionOptions()
            options.log_severity_level = _LOG_ERRORS_ONLY
            session = onnxruntime.InferenceSession(source, sess_options=options, providers=chosen)
    except Exception as error:
        raise ExportError(f"onnxruntime cannot load the model: {summarize_error(error)}") from error
    return session, with_kernels
