"""Parity check of an exported model against eager PyTorch, and its report.

Both sides run on the same seeded random inputs. Three criteria decide whether an output matches:

* ``float64-referenced`` (the default): the eager model also runs in float64 (a deep copy converted with
  ``.double()``, on the inputs converted to float64) as the reference. Eager float32 carries float32 rounding, and
  so does the exported model; an output passes when the exported model's error against float64 is at most
  :data:`FLOAT64_ERROR_FACTOR` times eager float32's own error against float64, or at most an absolute floor of
  :data:`FLOOR_ULPS` float32 ulps of the output's scale ``max |reference|`` (for outputs that eager float32 gets
  about exactly). This accepts a correct export of a deep network whatever its output magnitude, and refuses an
  export whose error exceeds what float32 itself explains.
* ``scale-relative``: when the model cannot run in float64 (a TorchScript model that refuses ``.double()``, ops
  without float64 kernels), an output passes when ``max |exported - eager| <= SCALE_RELATIVE_TOLERANCE * max
  |eager|``; the report says so and why.
* ``elementwise``: explicit ``atol``/``rtol`` give the strict criterion of ``numpy.allclose`` with eager as the
  reference, ``|exported - eager| <= atol + rtol * |eager|`` for every element.

With ``localize=True`` every module of the eager model is compared too: forward hooks record each module's output
(on the float32 model and on the float64 copy), the matching ONNX value is found from the exporter's scope metadata
and exposed as an extra output of an in-memory copy of the model, and each module passes or fails by the same
criterion as the outputs. Verification fails when any module boundary diverges, even if the final outputs pass; the
report names the first divergent module in execution order.

An ONNX model runs in an onnxruntime session opened by :mod:`holocron.runtime`: with holocron's kernels when they are
built (or required with ``use_kernels=True``), else on the standard-ONNX fallback functions the model carries; the
report records which. A TorchScript archive is reloaded and run by ``torch.jit``.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
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
    "FLOAT64_ERROR_FACTOR",
    "FLOOR_ULPS",
    "SCALE_RELATIVE_TOLERANCE",
    "Criterion",
    "ExecutionPath",
    "ModuleComparison",
    "OutputComparison",
    "VerificationReport",
    "assert_close_to_eager",
    "compare_outputs",
    "compare_scale_relative",
    "compare_to_float64",
    "verify",
    "verify_torchscript",
]

#: onnxruntime log level "error": warnings about declared vs actual shapes of dynamic outputs are noise here.
_LOG_ERRORS_ONLY = 3

#: What ran the exported model: onnxruntime with holocron's kernels, onnxruntime with the inlined standard-ONNX
#: fallback functions of the holocron ops, onnxruntime on a model without holocron ops, or a reloaded TorchScript
#: archive.
ExecutionPath = Literal["holocron-kernels", "onnx-fallback", "standard-onnx", "torchscript"]

#: How outputs are judged (see the module docstring).
Criterion = Literal["float64-referenced", "scale-relative", "elementwise"]

#: The exported model may be this many times as far from float64 as eager float32 is. Two float32 evaluations of the
#: same network in different summation orders (oneDNN vs MLAS convolutions, einsum vs MatMul) have errors of the same
#: size: their ratio stays within 0.3-2.5 on the reference networks (see the README's figures), so 4 leaves room for
#: that spread and no more. A real defect (a shifted window, a flipped kernel, a wrong weight) makes the error orders
#: of magnitude larger than float32 rounding.
FLOAT64_ERROR_FACTOR = 4.0
#: Absolute floor of the float64-referenced bound, in float32 ulps (``2**-23``) of the output's ``max |reference|``:
#: when eager float32 is about exact (error 0 or a fraction of an ulp), a few roundings by another evaluation order
#: still pass.
FLOOR_ULPS = 8.0
_FLOAT32_EPS = 2.0**-23
#: Bound of the scale-relative criterion: ``max |exported - eager| <= SCALE_RELATIVE_TOLERANCE * max |eager|``. Eager
#: float32 errors of deep networks reach 1e-4 of the output scale; 1e-3 leaves a margin over the sum of two such
#: errors while a defect of one output element in a thousand, relative to the scale, still fails.
SCALE_RELATIVE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class OutputComparison:
    """Eager vs the exported model for one output.

    Every criterion needs equal shapes and non-finite values at the same places with the same values (against eager
    float32). Then, by ``criterion``:

    * ``float64-referenced``: ``exported_error <= bound`` with ``bound = max(FLOAT64_ERROR_FACTOR * eager_error,
      FLOOR_ULPS * 2**-23 * scale)``;
    * ``scale-relative``: ``exported_error <= bound`` with ``bound = SCALE_RELATIVE_TOLERANCE * scale``, the errors
      being against eager float32;
    * ``elementwise``: ``|exported - eager| <= atol + rtol * |eager|`` for every finite element.

    Args:
        name: output name.
        shape: eager output shape.
        onnx_shape: the exported model's output shape.
        max_abs_error: ``max |exported - eager float32|`` over finite elements (None when the shapes differ).
        max_rel_error: ``max |exported - eager| / |eager|`` over finite elements with ``|eager| > atol`` (``atol``
            taken as 0 outside the element-wise criterion); None when the shapes differ.
        atol: absolute tolerance (element-wise criterion; None otherwise).
        rtol: relative tolerance (element-wise criterion; None otherwise).
        nonfinite_mismatches: elements where exactly one side, or both with different values, is NaN or infinite.
        passed: verdict.
        criterion: the criterion applied.
        eager_error: ``max |eager float32 - float64|`` (float64-referenced criterion; None otherwise).
        exported_error: ``max |exported - float64|`` (float64-referenced), or ``max |exported - eager float32|``
            (scale-relative); None for the element-wise criterion or different shapes.
        ratio: ``exported_error / eager_error`` (None when not defined).
        bound: the largest ``exported_error`` that passes (None for the element-wise criterion).
        scale: ``max |reference|`` over finite elements (float64 reference, else eager float32).
    """

    name: str
    shape: tuple[int, ...]
    onnx_shape: tuple[int, ...]
    max_abs_error: float | None
    max_rel_error: float | None
    atol: float | None
    rtol: float | None
    nonfinite_mismatches: int
    passed: bool
    criterion: Criterion = "elementwise"
    eager_error: float | None = None
    exported_error: float | None = None
    ratio: float | None = None
    bound: float | None = None
    scale: float | None = None


@dataclass(frozen=True)
class ModuleComparison:
    """One module of the eager model against the ONNX value found for its output (``localize=True``).

    Args:
        module: qualified name, as in ``model.named_modules()``.
        onnx_value: the ONNX value compared with the module's output.
        shape: the module's output shape.
        max_abs_err: the exported value's error (against float64, or eager float32 for the scale-relative
            criterion).
        reference_err: eager float32's error against float64 (None without a float64 reference).
        bound: the largest ``max_abs_err`` that passes.
        scale: ``max |reference|``.
        criterion: the criterion applied (that of the outputs).
        passed: verdict.
    """

    module: str
    onnx_value: str
    shape: tuple[int, ...]
    max_abs_err: float | None
    reference_err: float | None
    bound: float | None
    scale: float | None
    criterion: Criterion
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
        criterion: the criterion applied to every output and module.
        criterion_note: why the criterion is not the default one, when it is not (else empty).
        localized: whether module outputs were compared (``localize=True``).
        modules: the module comparisons, in execution order (empty without localization).
        unlocalized_modules: modules called once whose output could not be matched with an ONNX value (fused into
            another module's nodes, no nodes of their own, non-tensor output, different shape).
    """

    outputs: tuple[OutputComparison, ...]
    execution_path: ExecutionPath
    providers: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    seed: int
    holocron_ops: tuple[str, ...]
    criterion: Criterion = "elementwise"
    criterion_note: str = ""
    localized: bool = False
    modules: tuple[ModuleComparison, ...] = ()
    unlocalized_modules: int = 0

    @property
    def passed(self) -> bool:
        """Whether every output and every compared module passed."""
        return all(out.passed for out in self.outputs) and all(mod.passed for mod in self.modules)

    @property
    def divergent_modules(self) -> tuple[ModuleComparison, ...]:
        """The modules that failed, in execution order."""
        return tuple(mod for mod in self.modules if not mod.passed)

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        """The first divergent module in execution order as plain data, or None."""
        failed = self.divergent_modules
        if not failed:
            return None
        first = failed[0]
        return {
            "module": first.module,
            "onnx_value": first.onnx_value,
            "max_abs_err": first.max_abs_err,
            "reference_err": first.reference_err,
            "bound": first.bound,
            "criterion": first.criterion,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists instead of tuples), with the overall verdict under ``passed`` and the first
        divergent module under ``first_divergence``."""
        data = asdict(self)
        data["passed"] = self.passed
        data["first_divergence"] = self.first_divergence
        return json.loads(json.dumps(data))

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent)

    def failure_summary(self) -> str:
        """One line naming the failing outputs (the first three), the criterion and the first divergent module."""
        failed = [out for out in self.outputs if not out.passed]
        parts = []
        for out in failed[:3]:
            if out.shape != out.onnx_shape:
                parts.append(f"{out.name}: shape {out.onnx_shape} instead of {out.shape}")
            elif out.criterion == "elementwise":
                parts.append(
                    f"{out.name}: max abs err {out.max_abs_error:.3e}, max rel err {out.max_rel_error:.3e}"
                    + (f", {out.nonfinite_mismatches} NaN/inf mismatches" if out.nonfinite_mismatches else "")
                )
            else:
                parts.append(
                    f"{out.name}: error {_number(out.exported_error)} > bound {_number(out.bound)}"
                    + (f", {out.nonfinite_mismatches} NaN/inf mismatches" if out.nonfinite_mismatches else "")
                )
        if len(failed) > 3:
            parts.append(f"+{len(failed) - 3} more")
        first = self.first_divergence
        if first is not None:
            parts.append(
                f"first divergent module {first['module']!r} (error {_number(first['max_abs_err'])} > bound "
                f"{_number(first['bound'])})"
            )
        return f"verification failed ({'; '.join(parts)}; criterion {self._criterion_text()})"

    def _criterion_text(self) -> str:
        if self.criterion == "elementwise":
            return f"elementwise, atol {self.outputs[0].atol:g}, rtol {self.outputs[0].rtol:g}"
        if self.criterion == "scale-relative":
            return f"scale-relative, error <= {SCALE_RELATIVE_TOLERANCE:g} x max|eager|"
        return (
            f"float64-referenced, error vs float64 <= max({FLOAT64_ERROR_FACTOR:g} x eager float32's, "
            f"{FLOOR_ULPS:g} ulp x max|ref|)"
        )

    def format_table(self, divergences: int = 5) -> str:
        """A fixed-width table, one row per output, a summary line, and with localization the first ``divergences``
        divergent modules."""
        columns: dict[str, Callable[[OutputComparison], str]]
        if self.criterion == "elementwise":
            columns = {
                "max abs err": lambda out: _number(out.max_abs_error),
                "max rel err": lambda out: _number(out.max_rel_error),
                "atol": lambda out: _number(out.atol, ".1e"),
                "rtol": lambda out: _number(out.rtol, ".1e"),
            }
        else:
            reference = "eager f32 err" if self.criterion == "float64-referenced" else "-"
            columns = {
                reference: lambda out: _number(out.eager_error),
                "exported err": lambda out: _number(out.exported_error),
                "ratio": lambda out: _number(out.ratio, ".2f"),
                "bound": lambda out: _number(out.bound),
                "max|ref|": lambda out: _number(out.scale),
            }
        header = ("output", "shape", *columns, "result")
        rows = [
            (out.name, _shape_text(out), *(cell(out) for cell in columns.values()), "PASS" if out.passed else "FAIL")
            for out in self.outputs
        ]
        lines = _table(header, rows)
        ops = ", ".join(self.holocron_ops) if self.holocron_ops else "none"
        lines.append(
            f"{'PASSED' if self.passed else 'FAILED'}: {len(self.outputs)} output(s), execution path "
            f"{self.execution_path} (holocron ops: {ops}; providers: {', '.join(self.providers)}; seed {self.seed})"
        )
        lines.append(
            f"criterion: {self._criterion_text()}" + (f" ({self.criterion_note})" if self.criterion_note else "")
        )
        if self.localized:
            failed = self.divergent_modules
            lines.append(
                f"localization: {len(self.modules)} module(s) compared, {len(failed)} diverge"
                + (f", {self.unlocalized_modules} without a matching ONNX value" if self.unlocalized_modules else "")
            )
            if failed:
                lines.append(f"first divergence: module {failed[0].module!r} (ONNX value {failed[0].onnx_value!r})")
                module_rows = [
                    (
                        mod.module,
                        mod.onnx_value,
                        "x".join(map(str, mod.shape)),
                        _number(mod.reference_err),
                        _number(mod.max_abs_err),
                        _number(mod.bound),
                    )
                    for mod in failed[:divergences]
                ]
                lines.extend(
                    _table(("module", "onnx value", "shape", "eager f32 err", "exported err", "bound"), module_rows)
                )
                if len(failed) > divergences:
                    lines.append(f"(+{len(failed) - divergences} more divergent modules)")
        return "\n".join(lines)


def _shape_text(out: OutputComparison) -> str:
    return "x".join(map(str, out.shape)) if out.shape == out.onnx_shape else f"{out.shape} vs {out.onnx_shape}"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _number(value: float | None, spec: str = ".3e") -> str:
    return "-" if value is None else format(value, spec)


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


# --------------------------------------------------------------------------------------------------------------------
# Criteria
# --------------------------------------------------------------------------------------------------------------------


def _nonfinite_mismatches(reference: np.ndarray, actual: np.ndarray) -> tuple[int, np.ndarray]:
    """Count of non-finite disagreements, and the mask of the elements finite on both sides."""
    finite = np.isfinite(reference) & np.isfinite(actual)
    same_nonfinite = (reference == actual) | (np.isnan(reference) & np.isnan(actual))
    return int(np.count_nonzero(~finite & ~same_nonfinite)), finite


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else 0.0


def _eager_differences(eager: np.ndarray, actual: np.ndarray, atol: float) -> tuple[float, float]:
    """``max |actual - eager|`` and ``max |actual - eager| / |eager|`` where ``|eager| > atol``, finite elements."""
    reference = eager.astype(np.float64)
    other = actual.astype(np.float64)
    finite = np.isfinite(reference) & np.isfinite(other)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(other - reference)[finite]
    magnitude = np.abs(reference)[finite]
    significant = magnitude > atol
    return _max(error), _max(error[significant] / magnitude[significant])


def compare_outputs(
    name: str, eager: np.ndarray, onnx_value: np.ndarray, *, atol: float, rtol: float
) -> OutputComparison:
    """Compare one output element-wise (the ``elementwise`` criterion); see :class:`OutputComparison`.

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
    nonfinite, finite = _nonfinite_mismatches(reference, actual)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(actual - reference)[finite]
    magnitude = np.abs(reference)[finite]
    max_abs, max_rel = _eager_differences(eager, onnx_value, atol)
    within = bool(np.all(error <= atol + rtol * magnitude))
    return OutputComparison(
        name,
        shape,
        onnx_shape,
        max_abs,
        max_rel,
        atol,
        rtol,
        nonfinite,
        within and not nonfinite,
        scale=_max(magnitude),
    )


def _float64_verdict(
    reference64: np.ndarray, eager: np.ndarray, actual: np.ndarray
) -> tuple[int, float, float, float, float]:
    """Non-finite mismatches, eager error, exported error, bound and scale of the float64-referenced criterion."""
    reference = reference64.astype(np.float64)
    ours = eager.astype(np.float64)
    other = actual.astype(np.float64)
    nonfinite, finite = _nonfinite_mismatches(ours, other)
    finite &= np.isfinite(reference)
    with np.errstate(invalid="ignore", over="ignore"):
        eager_error = _max(np.abs(ours - reference)[finite])
        exported_error = _max(np.abs(other - reference)[finite])
    scale = _max(np.abs(reference)[finite])
    bound = max(FLOAT64_ERROR_FACTOR * eager_error, FLOOR_ULPS * _FLOAT32_EPS * scale)
    return nonfinite, eager_error, exported_error, bound, scale


def compare_to_float64(name: str, reference64: np.ndarray, eager: np.ndarray, exported: np.ndarray) -> OutputComparison:
    """Compare one output by the ``float64-referenced`` criterion; see :class:`OutputComparison`.

    Args:
        name: the output's name in the report.
        reference64: the output of the eager model run in float64.
        eager: the output of the eager model in float32.
        exported: the exported model's output.

    Returns:
        The comparison, with its verdict.
    """
    shape, onnx_shape = tuple(eager.shape), tuple(exported.shape)
    if shape != onnx_shape or tuple(reference64.shape) != shape:
        return OutputComparison(name, shape, onnx_shape, None, None, None, None, 0, False, "float64-referenced")
    nonfinite, eager_error, exported_error, bound, scale = _float64_verdict(reference64, eager, exported)
    ratio = exported_error / eager_error if eager_error > 0 else None
    errors = {"eager_error": eager_error, "exported_error": exported_error, "ratio": ratio, "bound": bound}
    passed = exported_error <= bound and not nonfinite
    differences = _eager_differences(eager, exported, 0.0)
    return _graded(name, shape, differences, nonfinite, passed, "float64-referenced", scale=scale, **errors)


def _graded(
    name: str,
    shape: tuple[int, ...],
    differences: tuple[float, float],
    nonfinite: int,
    passed: bool,
    criterion: Criterion,
    **errors: Any,
) -> OutputComparison:
    """The comparison of two outputs of ``shape`` under ``criterion`` (no element-wise tolerances), with its verdict.

    Args:
        name: the output's name in the report.
        shape: the shape of both outputs.
        differences: max absolute and relative difference between eager and exported.
        nonfinite: non-finite mismatches.
        passed: the verdict.
        criterion: the criterion applied.
        **errors: the criterion's figures (``eager_error``, ``exported_error``, ``ratio``, ``bound``, ``scale``).

    Returns:
        The comparison.
    """
    return OutputComparison(name, shape, shape, *differences, None, None, nonfinite, passed, criterion, **errors)


def compare_scale_relative(name: str, eager: np.ndarray, exported: np.ndarray) -> OutputComparison:
    """Compare one output by the ``scale-relative`` criterion (no float64 reference); see :class:`OutputComparison`.

    Args:
        name: the output's name in the report.
        eager: the eager PyTorch output.
        exported: the exported model's output.

    Returns:
        The comparison, with its verdict.
    """
    shape, onnx_shape = tuple(eager.shape), tuple(exported.shape)
    if shape != onnx_shape:
        return OutputComparison(name, shape, onnx_shape, None, None, None, None, 0, False, "scale-relative")
    nonfinite, finite = _nonfinite_mismatches(eager.astype(np.float64), exported.astype(np.float64))
    differences = _eager_differences(eager, exported, 0.0)
    max_abs = differences[0]
    scale = _max(np.abs(eager.astype(np.float64))[finite])
    bound = SCALE_RELATIVE_TOLERANCE * scale
    passed = max_abs <= bound and not nonfinite
    return _graded(
        name, shape, differences, nonfinite, passed, "scale-relative", exported_error=max_abs, bound=bound, scale=scale
    )


@dataclass(frozen=True)
class _Judge:
    """The criterion of one verification, applied to outputs and to module boundaries."""

    criterion: Criterion
    atol: float
    rtol: float
    note: str = ""

    def output(
        self, name: str, eager: np.ndarray, exported: np.ndarray, reference64: np.ndarray | None
    ) -> OutputComparison:
        if self.criterion == "elementwise":
            return compare_outputs(name, eager, exported, atol=self.atol, rtol=self.rtol)
        if self.criterion == "float64-referenced" and reference64 is not None:
            return compare_to_float64(name, reference64, eager, exported)
        return compare_scale_relative(name, eager, exported)

    def module(
        self, module: str, value: str, eager: np.ndarray, exported: np.ndarray, reference64: np.ndarray | None
    ) -> ModuleComparison:
        out = self.output(module, eager, exported, reference64)
        if self.criterion == "elementwise":
            error, reference_err, bound = out.max_abs_error, None, None
        else:
            error, reference_err, bound = out.exported_error, out.eager_error, out.bound
        return ModuleComparison(
            module, value, tuple(eager.shape), error, reference_err, bound, out.scale, out.criterion, out.passed
        )


def _judge(atol: float | None, rtol: float | None) -> _Judge:
    if atol is None and rtol is None:
        return _Judge("float64-referenced", DEFAULT_ATOL, DEFAULT_RTOL)
    atol = DEFAULT_ATOL if atol is None else atol
    rtol = DEFAULT_RTOL if rtol is None else rtol
    if not atol >= 0 or not rtol >= 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol}, rtol={rtol}")
    return _Judge("elementwise", atol, rtol)


# --------------------------------------------------------------------------------------------------------------------
# Eager runs: float32, float64, module outputs
# --------------------------------------------------------------------------------------------------------------------


class _ModuleRecorder:
    """Forward hooks recording every module's output (cloned: later in-place ops must not change it), the order of
    the calls, and which module produced the tensor each module consumed first."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: dict[str, int] = {}
        self.outputs: dict[str, np.ndarray] = {}
        self.order: list[str] = []
        #: module -> the module whose output it took as first input (by tensor identity).
        self.fed_by: dict[str, str] = {}
        self._producer: dict[int, str] = {}
        self._alive: list[torch.Tensor] = []  # keeps the ids in _producer valid during the run
        self._handles = []
        for name, module in model.named_modules():
            if not name:
                continue
            try:
                self._handles.append(module.register_forward_hook(self._hook(name)))
            except Exception:  # e.g. a scripted submodule: it is then not localized
                continue

    def _hook(self, name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if first is not None and id(first) in self._producer and name not in self.fed_by:
                self.fed_by[name] = self._producer[id(first)]
            if isinstance(output, torch.Tensor):
                if name not in self.outputs:
                    self.outputs[name] = output.detach().cpu().clone().numpy()
                    self.order.append(name)
                self._producer[id(output)] = name
                self._alive.append(output)

        return record

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._alive.clear()


def _run_eager(
    model: nn.Module, tensors: tuple[torch.Tensor, ...], record: bool
) -> tuple[list[np.ndarray], _ModuleRecorder | None]:
    recorder = _ModuleRecorder(model) if record else None
    try:
        with eval_mode(model), torch.no_grad():
            outputs = [t.detach().cpu().numpy() for t in _flatten(model(*tensors))]
    finally:
        if recorder is not None:
            recorder.close()
    return outputs, recorder


def _eager_outputs(model: nn.Module, tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    return _run_eager(model, tensors, record=False)[0]


def _float64_run(
    model: nn.Module, tensors: tuple[torch.Tensor, ...], record: bool
) -> tuple[list[np.ndarray] | None, _ModuleRecorder | None, str]:
    """The float64 reference: outputs (None when the model cannot run in float64), module recorder, and why not."""
    try:
        double = copy.deepcopy(model).double()
        inputs = tuple(t.double() if t.is_floating_point() else t for t in tensors)
        outputs, recorder = _run_eager(double, inputs, record)
    except Exception as error:
        return None, None, f"the model cannot run in float64: {summarize_error(error)}"
    if any(out.dtype != np.float64 for out in outputs if np.issubdtype(out.dtype, np.floating)):
        return None, None, "the model's float64 copy returns outputs of lower precision"
    return outputs, recorder, ""


def _reference(
    judge: _Judge, model: nn.Module, tensors: tuple[torch.Tensor, ...], record: bool
) -> tuple[_Judge, list[np.ndarray] | None, _ModuleRecorder | None]:
    """The float64 reference when the criterion needs one, and the criterion actually applied."""
    if judge.criterion != "float64-referenced":
        return judge, None, None
    outputs, recorder, why = _float64_run(model, tensors, record)
    if outputs is None:
        return _Judge("scale-relative", judge.atol, judge.rtol, why), None, None
    return judge, outputs, recorder


# --------------------------------------------------------------------------------------------------------------------
# Localization: module outputs vs ONNX values
# --------------------------------------------------------------------------------------------------------------------

#: Node metadata in which the dynamo exporter records the module scopes of a node (``['', 'stages', 'stages.0',
#: ..., op]``: the root, the qualified names of the enclosing modules, the node's own name).
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
_REPEATED_CALL = re.compile(r"_\d+$")


def _node_scopes(node: onnx.NodeProto, module_names: set[str]) -> list[str]:
    """Qualified names of the modules whose forward emitted ``node``, outermost first.

    The dynamo exporter records them in the node's metadata; the TorchScript exporter names a node after its scope
    path, such as ``/stages/stages.0/spatial/Lambda``, where the child of a container appears as ``stages.0`` (the
    container's segment, a dot and the child's name).
    """
    for prop in node.metadata_props:
        if prop.key == _NAME_SCOPES:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return []
            return [scope for scope in scopes[1:-1] if isinstance(scope, str) and scope in module_names]
    if not node.name.startswith("/"):
        return []
    path: list[str] = []
    previous = ""
    found = []
    for segment in node.name.split("/")[1:-1]:
        child = segment[len(previous) + 1 :] if previous and segment.startswith(previous + ".") else segment
        path.append(child)
        previous = segment
        name = ".".join(path)
        if name in module_names:
            found.append(name)
    return found


def _module_values(graph: onnx.GraphProto, module_names: set[str]) -> dict[str, str]:
    """For each module with nodes of its own in ``graph``: the value its forward returns.

    That is the last value (in graph order) produced inside the module's scope and used outside it (by a node of
    another scope, or as a graph output).
    """
    nodes = list(graph.node)
    members: dict[str, set[int]] = {}
    for index, node in enumerate(nodes):
        for scope in _node_scopes(node, module_names):
            members.setdefault(scope, set()).add(index)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    graph_outputs = {value.name for value in graph.output}
    values = {}
    for module, indices in members.items():
        exits = [
            value
            for index in sorted(indices)
            for value in nodes[index].output
            if value and (value in graph_outputs or any(c not in indices for c in consumers.get(value, ())))
        ]
        if exits:
            values[module] = exits[-1]
    return values


def _has_own_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def _match_modules(model: nn.Module, proto: onnx.ModelProto, recorder: _ModuleRecorder) -> dict[str, str]:
    """Module name -> ONNX value for the modules called once whose output can be found in ``proto``.

    The TorchScript exporter fuses a BatchNorm into the preceding convolution and names the fused node after the
    convolution: a module with state but no nodes of its own, fed by a leaf module, was folded into that leaf, whose
    value is then the folded module's output and is attributed to it. (The dynamo exporter's rewriter labels a fused
    node with the later module's scope, so nothing is moved for its graphs.)
    """
    modules = dict(model.named_modules())
    values = _module_values(proto.graph, set(modules))
    once = {name for name, count in recorder.calls.items() if count == 1}
    dynamo = any(prop.key == _NAME_SCOPES for node in proto.graph.node for prop in node.metadata_props)
    for name in recorder.order:
        source = recorder.fed_by.get(name)
        if (
            not dynamo
            and source is not None
            and not any(True for _ in modules[source].children())
            and name not in values
            and name in once
            and source in once
            and source in values
            and _has_own_state(modules[name])
            and not name.startswith(source + ".")
        ):
            values[name] = values.pop(source)
    return {name: values[name] for name in recorder.order if name in once and name in values}


def _localize(
    judge: _Judge,
    model: nn.Module,
    proto: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    recorder: _ModuleRecorder,
    recorder64: _ModuleRecorder | None,
    use_kernels: bool | None,
    providers: Sequence[str] | None,
) -> tuple[tuple[ModuleComparison, ...], int]:
    """Compare every matched module's output with its ONNX value, exposed as an extra output of a copy of ``proto``."""
    matches = {
        name: value
        for name, value in _match_modules(model, proto, recorder).items()
        if np.issubdtype(recorder.outputs[name].dtype, np.floating)
    }
    candidates = [name for name in recorder.order if recorder.calls.get(name) == 1]
    if not matches:
        return (), len(candidates)
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    present = {value.name for value in probe.graph.output}
    for name, value in matches.items():
        if value not in present:
            elem_type = onnx.helper.np_dtype_to_tensor_dtype(recorder.outputs[name].dtype)
            probe.graph.output.append(onnx.helper.make_tensor_value_info(value, elem_type, None))
            present.add(value)
    session, _ = _open_session(probe, use_kernels, providers)
    names = sorted(set(matches.values()))
    try:
        results = dict(zip(names, session.run(names, feeds), strict=True))
    except Exception as error:
        raise ExportError(f"onnxruntime failed to run the localization copy: {summarize_error(error)}") from error
    comparisons = []
    for name, value in matches.items():
        eager = recorder.outputs[name]
        exported = np.asarray(results[value])
        reference = recorder64.outputs.get(name) if recorder64 is not None else None
        if exported.shape != eager.shape or (reference is not None and reference.shape != eager.shape):
            continue
        comparisons.append(judge.module(name, value, eager, exported, reference))
    return tuple(comparisons), len(candidates) - len(comparisons)


# --------------------------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------------------------


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
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    use_kernels: bool | None = None,
    providers: Sequence[str] | None = None,
    localize: bool = False,
) -> VerificationReport:
    """Run ``model`` eagerly (eval mode) and the exported ``onnx_model`` in onnxruntime on the same inputs; compare.

    Without ``atol``/``rtol`` the criterion is ``float64-referenced`` (``scale-relative`` when the model cannot run
    in float64); with either, ``elementwise`` (the other one taking its default, :data:`DEFAULT_ATOL` or
    :data:`DEFAULT_RTOL`). See the module docstring.

    Args:
        model: the eager PyTorch module the ONNX model was exported from.
        onnx_model: the exported model (proto or file path).
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance (>= 0) of the element-wise criterion.
        rtol: relative tolerance (>= 0) of the element-wise criterion.
        seed: seed of the random inputs.
        use_kernels: True requires holocron's onnxruntime kernels, False forces the fallback functions, None uses
            the kernels when ``holocron.runtime`` is available.
        providers: onnxruntime execution providers (default CPU).
        localize: also compare every module's output with the matching ONNX value.

    Returns:
        The report; ``report.passed`` is the verdict (a failed comparison does not raise).

    Raises:
        ValueError: negative tolerances, or inputs that do not fit the ONNX model (count or fixed dimensions).
        ExportError: onnxruntime cannot run the model, or the output counts differ.
    """
    judge = _judge(atol, rtol)
    proto = _load(onnx_model)
    tensors = make_inputs(inputs, seed=seed)
    session, with_kernels = _open_session(proto, use_kernels, providers)
    _check_feeds(session.get_inputs(), tensors)
    feeds = {meta.name: t.detach().cpu().numpy() for meta, t in zip(session.get_inputs(), tensors, strict=True)}
    try:
        onnx_outputs = session.run(None, feeds)
    except Exception as error:
        raise ExportError(f"onnxruntime failed to run the model: {summarize_error(error)}") from error
    eager_outputs, recorder = _run_eager(model, tensors, record=localize)
    names = [meta.name for meta in session.get_outputs()]
    if len(eager_outputs) != len(onnx_outputs):
        raise ExportError(f"eager model returned {len(eager_outputs)} output(s), the ONNX model {len(onnx_outputs)}")
    judge, reference, recorder64 = _reference(judge, model, tensors, record=localize)
    comparisons = tuple(
        judge.output(name, eager, np.asarray(actual), None if reference is None else reference[index])
        for index, (name, eager, actual) in enumerate(zip(names, eager_outputs, onnx_outputs, strict=True))
    )
    modules: tuple[ModuleComparison, ...] = ()
    unmatched = 0
    if recorder is not None:
        modules, unmatched = _localize(judge, model, proto, feeds, recorder, recorder64, use_kernels, providers)
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
        criterion=judge.criterion,
        criterion_note=judge.note,
        localized=localize,
        modules=modules,
        unlocalized_modules=unmatched,
    )


def verify_torchscript(
    model: nn.Module,
    archive: torch.jit.ScriptModule | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> VerificationReport:
    """Compare ``model`` (eager, eval mode) with a TorchScript archive on the same seeded inputs.

    The criteria and the report are those of :func:`verify` (without localization: the archive's modules run as
    compiled code, without hooks).

    Args:
        model: the eager PyTorch module the archive was made from.
        archive: the archive's path (loaded with ``torch.jit.load``) or an already loaded ``ScriptModule``.
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance (>= 0) of the element-wise criterion.
        rtol: relative tolerance (>= 0) of the element-wise criterion.
        seed: seed of the random inputs.

    Returns:
        The report; ``report.passed`` is the verdict (a failed comparison does not raise).

    Raises:
        ValueError: negative tolerances.
        ExportError: the archive cannot be loaded or run, or the output counts differ.
    """
    judge = _judge(atol, rtol)
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
    judge, reference, _ = _reference(judge, model, tensors, record=False)
    names = [f"output_{i}" for i in range(len(eager_outputs))] if len(eager_outputs) > 1 else ["output"]
    return VerificationReport(
        outputs=tuple(
            judge.output(name, eager, actual, None if reference is None else reference[index])
            for index, (name, eager, actual) in enumerate(zip(names, eager_outputs, archive_outputs, strict=True))
        ),
        execution_path="torchscript",
        providers=("torch.jit",),
        input_shapes=tuple(tuple(t.shape) for t in tensors),
        seed=seed,
        holocron_ops=(),
        criterion=judge.criterion,
        criterion_note=judge.note,
    )


def _is_torchscript_file(path: str | os.PathLike[str]) -> bool:
    import zipfile

    return zipfile.is_zipfile(os.fspath(path))


def assert_close_to_eager(
    model: nn.Module,
    artifact: onnx.ModelProto | torch.jit.ScriptModule | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    use_kernels: bool | None = None,
    localize: bool = False,
) -> VerificationReport:
    """Assert that an exported ``artifact`` matches eager ``model``, for users' own test suites.

    Args:
        model: the eager PyTorch module.
        artifact: an ONNX model (proto or file) or a TorchScript archive (loaded module or file; a zip file is taken
            as TorchScript, anything else as ONNX).
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance of the element-wise criterion (default: the float64-referenced criterion).
        rtol: relative tolerance of the element-wise criterion.
        seed: seed of the random inputs.
        use_kernels: see :func:`verify` (ONNX only).
        localize: also compare every module's output (ONNX only).

    Returns:
        The report, when it passed.

    Raises:
        AssertionError: the artifact diverges; the message is the report's table.
        ValueError: ``localize`` with a TorchScript artifact, or inputs that do not fit.
        ExportError: the artifact cannot be loaded or run.
    """
    scripted = isinstance(artifact, torch.jit.ScriptModule) or (
        not isinstance(artifact, onnx.ModelProto) and _is_torchscript_file(artifact)
    )
    if scripted:
        if localize:
            raise ValueError("localize=True needs an ONNX artifact (a TorchScript archive has no per-module values)")
        report = verify_torchscript(model, artifact, inputs, atol=atol, rtol=rtol, seed=seed)  # type: ignore[arg-type]
    else:
        report = verify(
            model, artifact, inputs, atol=atol, rtol=rtol, seed=seed, use_kernels=use_kernels, localize=localize
        )  # type: ignore[arg-type]
    if not report.passed:
        raise AssertionError("exported model diverges from eager PyTorch\n" + report.format_table())
    return report
