"""The criteria that decide whether an exported output matches eager PyTorch (numpy only).

Three criteria, chosen per verification (:func:`make_judge`):

* ``float64-referenced`` (the default): the eager model also runs in float64 as the reference. Eager float32 carries
  float32 rounding, and so does the exported model; an output passes when the exported model's error against float64
  is at most :data:`FLOAT64_ERROR_FACTOR` times eager float32's own error against float64, or at most an absolute
  floor of :data:`FLOOR_ULPS` float32 ulps of the output's scale ``max |reference|`` (for outputs that eager float32
  gets about exactly). This accepts a correct export of a deep network whatever its output magnitude, and refuses an
  export whose error exceeds what float32 itself explains.
* ``scale-relative``: when the model cannot run in float64 (a TorchScript model that refuses ``.double()``, ops
  without float64 kernels), an output passes when ``max |exported - eager| <= SCALE_RELATIVE_TOLERANCE * max
  |eager|``; the report says so and why.
* ``elementwise``: explicit ``atol``/``rtol`` give the strict criterion of ``numpy.allclose`` with eager as the
  reference, ``|exported - eager| <= atol + rtol * |eager|`` for every element.

:class:`Judge` applies the chosen criterion to outputs (:class:`OutputComparison`) and to module boundaries
(:class:`ModuleComparison`) alike. This module imports numpy only, so the command lines read the defaults while
parsing their arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "FLOAT64_ERROR_FACTOR",
    "FLOOR_ULPS",
    "SCALE_RELATIVE_TOLERANCE",
    "Criterion",
    "Judge",
    "ModuleComparison",
    "OutputComparison",
    "UnlocalizedModule",
    "compare_outputs",
    "compare_scale_relative",
    "compare_to_float64",
    "make_judge",
]

#: Default absolute tolerance of the verification: an output element passes when
#: ``|exported - eager| <= atol + rtol * |eager|``.
DEFAULT_ATOL = 1e-5


#: Default relative tolerance of the verification (see :data:`DEFAULT_ATOL`).
DEFAULT_RTOL = 1e-4


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


#: How outputs are judged (see the module docstring).
Criterion = Literal["float64-referenced", "scale-relative", "elementwise"]


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
        match: how the ONNX value was found: ``module-output`` (the last value of the module's own nodes), or
            ``fused`` (the exporter folded the modules of ``fused_modules`` and this one into one node, whose output
            this is: a divergence here may come from any of them).
        fused_modules: the modules folded into this one's value, in execution order (empty unless ``fused``).
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
    match: str = "module-output"
    fused_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnlocalizedModule:
    """A module called during the run whose output was not compared (``localize=True``), and why.

    Args:
        module: qualified name, as in ``model.named_modules()``.
        reason: ``called-repeatedly``, ``fused``, ``no-nodes`` (no computation of its own in the eager graph, such
            as an identity), ``no-onnx-nodes``, ``not-one-tensor``, ``not-floating``, ``shape-mismatch`` or
            ``not-recorded`` (the eager side could not record its output).
        detail: the reason in words (``called 3 times``, ``fused into 'stem.1'``, ``returns a tuple``...).
        calls: how many times it was called.
        fused_into: the module whose compared value includes this one's computation (``fused`` only).
    """

    module: str
    reason: str
    detail: str
    calls: int = 1
    fused_into: str | None = None


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
class Judge:
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


def make_judge(atol: float | None, rtol: float | None) -> Judge:
    if atol is None and rtol is None:
        return Judge("float64-referenced", DEFAULT_ATOL, DEFAULT_RTOL)
    atol = DEFAULT_ATOL if atol is None else atol
    rtol = DEFAULT_RTOL if rtol is None else rtol
    if not atol >= 0 or not rtol >= 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol}, rtol={rtol}")
    return Judge("elementwise", atol, rtol)
