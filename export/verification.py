"""Parity check of an exported model against eager PyTorch, and its report.

Both sides run on the same seeded random inputs; every output is compared element-wise with
``|onnx - eager| <= atol + rtol * |eager|`` (the criterion of ``numpy.allclose`` with eager as the reference).
An ONNX model runs in an onnxruntime session opened by :mod:`holocron.runtime`: with holocron's kernels when they are
built (or required with ``use_kernels=True``), else on the standard-ONNX fallback functions the model carries; the
report records which. A TorchScript archive is reloaded and run by ``torch.jit``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import onnx
import torch
from torch import nn

from holocron import runtime

from .errors import DEFAULT_ATOL, DEFAULT_RTOL, ExportError, summarize_error
from .model_loading import InputSpec, eval_mode, make_inputs
from .onnx_graph import holocron_nodes

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "ExecutionPath",
    "OutputComparison",
    "VerificationReport",
    "compare_outputs",
    "verify",
    "verify_torchscript",
]

#: onnxruntime log level "error": warnings about declared vs actual shapes of dynamic outputs are noise here.
_LOG_ERRORS_ONLY = 3

#: What ran the exported model: onnxruntime with holocron's kernels, onnxruntime with the inlined standard-ONNX
#: fallback functions of the holocron ops, onnxruntime on a model without holocron ops, or a reloaded TorchScript
#: archive.
ExecutionPath = Literal["holocron-kernels", "onnx-fallback", "standard-onnx", "torchscript"]


@dataclass(frozen=True)
class OutputComparison:
    """Eager vs onnxruntime for one output.

    An output passes when the shapes agree, non-finite values sit at the same places with the same values, and every
    finite element satisfies ``|onnx - eager| <= atol + rtol * |eager|``.

    Args:
        name: ONNX output name.
        shape: eager output shape.
        onnx_shape: onnxruntime output shape.
        max_abs_error: ``max |onnx - eager|`` over finite elements (None when the shapes differ).
        max_rel_error: ``max |onnx - eager| / |eager|`` over finite elements with ``|eager| > atol`` (near zero the
            absolute error governs); None when the shapes differ.
        atol: absolute tolerance.
        rtol: relative tolerance.
        nonfinite_mismatches: elements where exactly one side, or both with different values, is NaN or infinite.
        passed: verdict.
    """

    name: str
    shape: tuple[int, ...]
    onnx_shape: tuple[int, ...]
    max_abs_error: float | None
    max_rel_error: float | None
    atol: float
    rtol: float
    nonfinite_mismatches: int
    passed: bool


@dataclass(frozen=True)
class VerificationReport:
    """Parity of an exported model with eager PyTorch on seeded random inputs.

    Args:
        outputs: one comparison per model output, in order.
        execution_path: what ran the exported model (see :data:`ExecutionPath`).
        providers: onnxruntime execution providers of the session (``torch.jit`` for a TorchScript archive).
        input_shapes: shapes of the inputs fed to both sides.
        seed: seed of the random inputs.
        holocron_ops: holocron op types present in the model.
    """

    outputs: tuple[OutputComparison, ...]
    execution_path: ExecutionPath
    providers: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    seed: int
    holocron_ops: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether every output passed."""
        return all(out.passed for out in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists instead of tuples), with the overall verdict under ``passed``."""
        data = asdict(self)
        data["passed"] = self.passed
        return json.loads(json.dumps(data))

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent)

    def failure_summary(self) -> str:
        """One line naming the failing outputs (the first three) and the tolerances, for an error message."""
        failed = [out for out in self.outputs if not out.passed]
        parts = []
        for out in failed[:3]:
            if out.shape != out.onnx_shape:
                parts.append(f"{out.name}: shape {out.onnx_shape} instead of {out.shape}")
            else:
                parts.append(
                    f"{out.name}: max abs err {out.max_abs_error:.3e}, max rel err {out.max_rel_error:.3e}"
                    + (f", {out.nonfinite_mismatches} NaN/inf mismatches" if out.nonfinite_mismatches else "")
                )
        more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        return (
            f"verification failed ({'; '.join(parts)}{more}; atol {self.outputs[0].atol:g}, "
            f"rtol {self.outputs[0].rtol:g})"
        )

    def format_table(self) -> str:
        """A fixed-width table, one row per output, then a summary line."""
        header = ("output", "shape", "max abs err", "max rel err", "atol", "rtol", "result")
        rows = [
            (
                out.name,
                "x".join(map(str, out.shape)) if out.shape == out.onnx_shape else f"{out.shape} vs {out.onnx_shape}",
                _number(out.max_abs_error),
                _number(out.max_rel_error),
                f"{out.atol:.1e}",
                f"{out.rtol:.1e}",
                "PASS" if out.passed else "FAIL",
            )
            for out in self.outputs
        ]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        ops = ", ".join(self.holocron_ops) if self.holocron_ops else "none"
        lines.append(
            f"{'PASSED' if self.passed else 'FAILED'}: {len(self.outputs)} output(s), execution path "
            f"{self.execution_path} (holocron ops: {ops}; providers: {', '.join(self.providers)}; seed {self.seed})"
        )
        return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3e}"


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
    """Compare one output; see :class:`OutputComparison` for the criterion and the error definitions.

    Args:
        name: the output's name in the report.
        eager: the eager PyTorch output (the reference).
        onnx_value: the exported model's output.
        atol: absolute tolerance.
        rtol: relative tolerance.

    Returns:
        The comparison, with its verdict.
    """
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


def _open_session(
    proto: onnx.ModelProto, use_kernels: bool | None, providers: Sequence[str] | None
) -> tuple[Any, bool]:
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
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
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
    session, with_kernels = _open_session(proto, use_kernels, providers)
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
    holocron_ops = sorted({node.op_type for node in holocron_nodes(proto)})
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
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
) -> VerificationReport:
    """Compare ``model`` (eager, eval mode) with a TorchScript archive on the same seeded inputs.

    The criterion and the report are those of :func:`verify`.

    Args:
        model: the eager PyTorch module the archive was made from.
        archive: the archive's path (loaded with ``torch.jit.load``) or an already loaded ``ScriptModule``.
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance (>= 0).
        rtol: relative tolerance (>= 0).
        seed: seed of the random inputs.

    Returns:
        The report; ``report.passed`` is the verdict (a failed comparison does not raise).

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
