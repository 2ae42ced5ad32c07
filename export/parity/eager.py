"""Eager runs of the reference model: float32 outputs, the float64 reference, and (in the same runs) every module's
output, recorded as the model's kind allows (:func:`make_recorder`)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, summarize_error
from ..model.modes import eval_mode
from .criteria import Judge
from .graph_recording import GraphRecorder, has_module_stacks
from .recording import HookRecorder, LocalizationUnavailableError, ModuleRecording, Recorder
from .script_recording import ScriptRecorder

__all__ = ["eager_outputs", "flatten_outputs", "float64_run", "make_recorder", "reference_run", "run_eager"]


def flatten_outputs(value: Any) -> Iterator[torch.Tensor]:
    """Output tensors in the order the ONNX exporters emit them (nested tuples/lists/dicts flattened)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from flatten_outputs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from flatten_outputs(item)
    else:
        raise ExportError(f"model output of type {type(value).__name__} cannot be compared (tensors expected)")


def make_recorder(model: nn.Module) -> Recorder:
    """The recorder for ``model``'s kind (see :mod:`~holocron.export.parity.recording`).

    Raises:
        LocalizationUnavailableError: the model's modules cannot be told apart (the message says why).
    """
    if isinstance(model, torch.jit.ScriptModule):
        return ScriptRecorder(model)
    if isinstance(model, torch.fx.GraphModule) and (
        has_module_stacks(model)
        or not any(node.op == "call_module" and node.target != "_guards_fn" for node in model.graph.nodes)
    ):
        return GraphRecorder(model)  # a torch.export program: its submodules only hold parameters
    return HookRecorder(model)


def run_eager(
    model: nn.Module, tensors: tuple[torch.Tensor, ...], record: bool, recorder: Recorder | None = None
) -> tuple[list[np.ndarray], ModuleRecording | None]:
    """The model's outputs and, with ``record``, every module's output from the same run."""
    with eval_mode(model), torch.no_grad():
        if not record:
            return [t.detach().cpu().numpy() for t in flatten_outputs(model(*tensors))], None
        result, recording = (recorder or make_recorder(model)).run(tensors)
        return [t.detach().cpu().numpy() for t in flatten_outputs(result)], recording


def eager_outputs(model: nn.Module, tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    return run_eager(model, tensors, record=False)[0]


def float64_run(
    model: nn.Module, tensors: tuple[torch.Tensor, ...], record: bool, recorder: Recorder | None = None
) -> tuple[list[np.ndarray] | None, ModuleRecording | None, str]:
    """The float64 reference: outputs (None when the model cannot run in float64), module recording, and why not.

    With ``record``, the module outputs are recorded by ``recorder`` (that of the float32 model) bound to the float64
    copy, or by a new recorder.
    """
    try:
        double = copy.deepcopy(model).double()
        inputs = tuple(t.double() if t.is_floating_point() else t for t in tensors)
        bound = None
        if record:
            with contextlib.suppress(LocalizationUnavailableError):
                bound = recorder.bind(double) if recorder is not None else make_recorder(double)
        outputs, recording = run_eager(double, inputs, bound is not None, bound)
    except Exception as error:
        return None, None, f"the model cannot run in float64: {summarize_error(error)}"
    if any(out.dtype != np.float64 for out in outputs if np.issubdtype(out.dtype, np.floating)):
        return None, None, "the model's float64 copy returns outputs of lower precision"
    return outputs, recording, ""


def reference_run(
    judge: Judge, model: nn.Module, tensors: tuple[torch.Tensor, ...], record: bool, recorder: Recorder | None = None
) -> tuple[Judge, list[np.ndarray] | None, ModuleRecording | None]:
    """The float64 reference when the criterion needs one, and the criterion actually applied."""
    if judge.criterion != "float64-referenced":
        return judge, None, None
    outputs, recording, why = float64_run(model, tensors, record, recorder)
    if outputs is None:
        return Judge("scale-relative", judge.atol, judge.rtol, why), None, None
    return judge, outputs, recording
