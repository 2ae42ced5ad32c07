"""Parity check of an exported ONNX model against eager PyTorch, in onnxruntime.

Both sides run on the same seeded random inputs; every output is compared element-wise with
``|onnx - eager| <= atol + rtol * |eager|`` (the criterion of ``numpy.allclose`` with eager as the reference).
onnxruntime runs holocron's kernels when ``holocron.runtime`` is available (or required with ``use_kernels=True``),
else the standard-ONNX fallback functions the model carries; the report records which.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from .custom_op_support import HOLOCRON_DOMAIN
from .errors import ExportError, summarize_error
from .input_specs import InputSpec, make_inputs
from .model_mode import eval_mode
from .onnx_runtime_session import create_session
from .verification_report import ExecutionPath, OutputComparison, VerificationReport

__all__ = ["compare_outputs", "verify", "verify_torchscript"]


def _flatten(value: Any) -> Iterator[torch.Tensor]:
    """Output tensors in the order the ONNX exporters emit them (nested tuples/lists/dicts flattened)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    else:
        raise ExportError(f"model output of type {type(value).__name__} cannot be compared (tensors expected)")


def compare_outputs(
    name: str, eager: np.ndarray, onnx_value: np.ndarray, *, atol: float, rtol: float
) -> OutputComparison:
    """Compare one output; see :class:`OutputComparison` for the criterion and the error definitions."""
    shape, onnx_shape = tuple(eager.shape), tuple(onnx_value.shape)
    if shape != onnx_shape:
        return OutputComparison(name, shape, onnx_shape, None, None, atol, rtol, 0, False)
    reference = eager.astype(np.float64)
    actual = onnx_value.astype(np.float64)
    finite = np.isfinite(reference) & np.isfinite(actual)
    same_nonfinite = (reference == actual) | (np.isnan(reference) & np.isnan(actual))
    nonfinite_mismatches = int(np.count_nonzero(~finite & ~same_nonfinite))
    error = np.abs(actual - reference)[finite]
    magnitude = np.abs(reference)[finite]
    max_abs = float(error.max()) if error.size else 0.0
    significant = magnitude > atol
    max_rel = float((error[significant] / magnitude[significant]).max()) if significant.any() else 0.0
    within = bool(np.all(error <= atol + rtol * magnitude))
    return OutputComparison(
        name, shape, onnx_shape, max_abs, max_rel, atol, rtol, nonfinite_mismatches, within and not nonfinite_mismatches
    )


def _eager_outputs(model: nn.Module, tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with eval_mode(model), torch.no_grad():
        return [t.detach().cpu().numpy() for t in _flatten(model(*tensors))]


def _load(onnx_model: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    if isinstance(onnx_model, onnx.ModelProto):
        return onnx_model
    try:
        return onnx.load(os.fspath(onnx_model))
    except Exception as error:
        raise ExportError(f"cannot read ONNX model {os.fspath(onnx_model)!r}: {error}") from error


def _check_feeds(session_inputs: Sequence[Any], inputs: tuple[torch.Tensor, ...]) -> None:
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


def verify(
    model: nn.Module,
    onnx_model: onnx.ModelProto | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
    use_kernels: bool | None = None,
    providers: Sequence[str] | None = None,
) -> VerificationReport:
    """Run ``model`` eagerly (eval mode) and the exported ``onnx_model`` in onnxruntime on the same inputs; compare.

    Args:
        model: the eager PyTorch module the ONNX model was exported from.
        onnx_model: the exported model (proto or file path).
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance (>= 0).
        rtol: relative tolerance (>= 0).
        seed: seed of the random inputs.
        use_kernels: True requires holocron's onnxruntime kernels, False forces the fallback functions, None uses
            the kernels when ``holocron.runtime`` is available.
        providers: onnxruntime execution providers (default CPU).

    Returns:
        The report; ``report.passed`` is the verdict (a failed comparison does not raise).

    Raises:
        ValueError: negative tolerances, or inputs that do not fit the ONNX model (count or fixed dimensions).
        ExportError: onnxruntime cannot run the model, or the output counts differ.
    """
    if not atol >= 0 or not rtol >= 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol}, rtol={rtol}")
    proto = _load(onnx_model)
    tensors = make_inputs(inputs, seed=seed)
    session, with_kernels = create_session(proto, use_kernels=use_kernels, providers=providers)
    _check_feeds(session.get_inputs(), tensors)
    feeds = {meta.name: t.detach().cpu().numpy() for meta, t in zip(session.get_inputs(), tensors, strict=True)}
    try:
        onnx_outputs = session.run(None, feeds)
    except Exception as error:
        raise ExportError(f"onnxruntime failed to run the model: {summarize_error(error)}") from error
    eager_outputs = _eager_outputs(model, tensors)
    names = [meta.name for meta in session.get_outputs()]
    if len(eager_outputs) != len(onnx_outputs):
        raise ExportError(f"eager model returned {len(eager_outputs)} output(s), the ONNX model {len(onnx_outputs)}")
    comparisons = tuple(
        compare_outputs(name, eager, np.asarray(actual), atol=atol, rtol=rtol)
        for name, eager, actual in zip(names, eager_outputs, onnx_outputs, strict=True)
    )
    holocron_ops = sorted({node.op_type for node in proto.graph.node if node.domain == HOLOCRON_DOMAIN})
    path: ExecutionPath = (
        "standard-onnx" if not holocron_ops else ("holocron-kernels" if with_kernels else "onnx-fallback")
    )
    return VerificationReport(
        outputs=comparisons,
        execution_path=path,
        providers=tuple(session.get_providers()),
        input_shapes=tuple(tuple(t.shape) for t in tensors),
        seed=seed,
        holocron_ops=tuple(holocron_ops),
    )


def verify_torchscript(
    model: nn.Module,
    archive: torch.jit.ScriptModule | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> VerificationReport:
    """Compare ``model`` (eager, eval mode) with a TorchScript archive (path, loaded with ``torch.jit.load``, or an
    already loaded ``ScriptModule``) on the same seeded inputs; same criterion and report as :func:`verify`.

    Raises:
        ValueError: negative tolerances.
        ExportError: the archive cannot be loaded or run, or the output counts differ.
    """
    if not atol >= 0 or not rtol >= 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol}, rtol={rtol}")
    tensors = make_inputs(inputs, seed=seed)
    try:
        scripted = archive if isinstance(archive, torch.jit.ScriptModule) else torch.jit.load(os.fspath(archive))
        with eval_mode(scripted), torch.no_grad():
            archive_outputs = [t.detach().cpu().numpy() for t in _flatten(scripted(*tensors))]
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(f"the TorchScript archive failed to load or run: {summarize_error(error)}") from error
    eager_outputs = _eager_outputs(model, tensors)
    if len(eager_outputs) != len(archive_outputs):
        raise ExportError(f"eager model returned {len(eager_outputs)} output(s), the archive {len(archive_outputs)}")
    names = [f"output_{i}" for i in range(len(eager_outputs))] if len(eager_outputs) > 1 else ["output"]
    return VerificationReport(
        outputs=tuple(
            compare_outputs(name, eager, actual, atol=atol, rtol=rtol)
            for name, eager, actual in zip(names, eager_outputs, archive_outputs, strict=True)
        ),
        execution_path="torchscript",
        providers=("torch.jit",),
        input_shapes=tuple(tuple(t.shape) for t in tensors),
        seed=seed,
        holocron_ops=(),
    )
