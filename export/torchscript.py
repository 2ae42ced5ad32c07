"""Save a PyTorch model as a TorchScript archive (``torch.jit.save``), written atomically.

The model is compiled with ``torch.jit.script``, which keeps its control flow. Only when scripting fails and example
inputs are available does it fall back to ``torch.jit.trace`` (a warning says so): a trace records the operations run
for those inputs, so data-dependent branches are frozen. That is the case, for instance, of the module of a
``torch.export`` archive, whose generated ``forward`` is not scriptable.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from holocron._jit import jit_deprecation_silenced

from .errors import ExportError, summarize_error
from .files import atomic_output, check_writable
from .model.modes import eval_mode

__all__ = ["TracingFallbackWarning", "to_script_module", "to_torchscript"]


class TracingFallbackWarning(UserWarning):
    """``torch.jit.script`` failed and the archive was produced by ``torch.jit.trace`` instead."""


def to_script_module(
    model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None
) -> torch.jit.ScriptModule:
    """Compile ``model`` to TorchScript; the result has ``model``'s current train/eval mode.

    Args:
        model: module to compile; a ``ScriptModule`` is returned as is.
        example_inputs: inputs for the tracing fallback; without them a scripting failure is an error.

    Raises:
        TypeError: ``model`` is not a module.
        ExportError: the model can be neither scripted nor (without example inputs) traced.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        return model
    try:
        with jit_deprecation_silenced():
            scripted = torch.jit.script(model)
    except Exception as script_error:
        if example_inputs is None:
            raise ExportError(f"torch.jit.script failed: {summarize_error(script_error)}") from script_error
        inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
        warnings.warn(
            f"torch.jit.script failed ({summarize_error(script_error)}); the archive was made with torch.jit.trace, "
            "so data-dependent control flow is frozen to the example inputs' path",
            TracingFallbackWarning,
            stacklevel=2,
        )
        try:
            with jit_deprecation_silenced():
                scripted = torch.jit.trace(model, inputs)
        except Exception as trace_error:
            raise ExportError(
                f"torch.jit.script failed ({summarize_error(script_error)}) and so did torch.jit.trace "
                f"({summarize_error(trace_error)})"
            ) from trace_error
    return scripted


def to_torchscript(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    overwrite: bool = False,
) -> Path:
    """Compile ``model`` with :func:`to_script_module` and save it with ``torch.jit.save`` to ``path``.

    The archive is saved in eval mode (the caller's module keeps its mode). It loads with ``torch.jit.load`` (after
    ``import holocron.ops`` when it calls holocron's custom ops) and computes what the eager model computes in eval
    mode.

    Args:
        model: module to save.
        path: destination archive (``.pt`` by convention).
        example_inputs: inputs for the tracing fallback (see the module docstring).
        overwrite: replace ``path`` if it exists.

    Returns:
        ``path``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before compiling).
        ExportError: the model could not be compiled.
    """
    target = check_writable(path, overwrite=overwrite)
    with eval_mode(model):
        scripted = to_script_module(model, example_inputs)
        with atomic_output(target, overwrite=overwrite) as tmp, jit_deprecation_silenced():
            torch.jit.save(scripted, str(tmp))
    return target
