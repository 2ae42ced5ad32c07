"""The exported model's side of a verification: read the ONNX model, open its session, check the feeds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import onnx
import torch

from holocron import runtime

from ..errors import ExportError, summarize_error

__all__ = ["check_feeds", "check_providers", "load_onnx", "open_session"]

#: onnxruntime log level "error": warnings about declared vs actual shapes of dynamic outputs are noise here.
_LOG_ERRORS_ONLY = 3


def load_onnx(onnx_model: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    if isinstance(onnx_model, onnx.ModelProto):
        return onnx_model
    try:
        return onnx.load(os.fspath(onnx_model))
    except Exception as error:
        raise ExportError(f"cannot read ONNX model {os.fspath(onnx_model)!r}: {error}") from error


def check_providers(providers: Sequence[Any] | None) -> list[Any] | None:
    """Check that every requested execution provider is available, instead of onnxruntime's silent CPU fallback.

    Args:
        providers: execution provider names (or ``(name, options)`` pairs), None for the default.

    Returns:
        The providers as a list (None for the default).

    Raises:
        TypeError: ``providers`` is a string, or an entry is neither a name nor a ``(name, options)`` pair.
        ValueError: ``providers`` is empty or names a provider this onnxruntime does not have.
    """
    if providers is None:
        return None
    if isinstance(providers, (str, bytes)):
        raise TypeError(f"providers must be a sequence of execution provider names, got the string {providers!r}")
    names = []
    for entry in providers:
        name = entry[0] if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], dict) else entry
        if not isinstance(name, str):
            raise TypeError(
                f"providers entries must be provider names or (name, options) pairs, got {type(entry).__name__}"
            )
        names.append(name)
    if not names:
        raise ValueError("providers must name at least one execution provider (or be None for the default)")
    import onnxruntime

    available = onnxruntime.get_available_providers()
    missing = [name for name in names if name not in available]
    if missing:
        raise ValueError(
            f"providers: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not available in this "
            f"onnxruntime (available: {', '.join(available)})"
        )
    return list(providers)


def open_session(proto: onnx.ModelProto, use_kernels: bool | None, providers: Sequence[str] | None) -> tuple[Any, bool]:
    """An onnxruntime session on ``proto`` from :func:`holocron.runtime.create_session`, and whether it has the kernels.

    Raises:
        ExportError: ``use_kernels=True`` but the kernels are not built, or onnxruntime rejects the model.
    """
    try:
        return runtime.create_session(
            proto.SerializeToString(),
            use_kernels=use_kernels,
            providers=providers,
            log_severity_level=_LOG_ERRORS_ONLY,
        )
    except runtime.RuntimeNotBuiltError as error:
        raise ExportError(
            f"use_kernels=True but holocron.runtime's custom-op library is not available: {error}"
        ) from error
    except Exception as error:
        raise ExportError(f"onnxruntime cannot load the model: {summarize_error(error)}") from error


def check_feeds(session_inputs: Sequence[Any], inputs: tuple[torch.Tensor, ...]) -> None:
    names = [i.name for i in session_inputs]
    if len(inputs) != len(names):
        raise ValueError(
            f"the ONNX model takes {len(names)} input(s) ({', '.join(names)}) but {len(inputs)} were given"
        )
    for meta, tensor in zip(session_inputs, inputs, strict=True):
        declared = meta.shape
        actual = tuple(tensor.shape)
        fixed_mismatch = any(isinstance(d, int) and d != a for d, a in zip(declared, actual, strict=False))
        if len(declared) != len(actual) or fixed_mismatch:
            expected = ",".join(str(d) if isinstance(d, int) else str(d or "?") for d in declared)
            raise ValueError(
                f"input {meta.name!r} has shape {','.join(map(str, actual))} but the ONNX model expects {expected}"
            )
