"""The verification report: per-output and per-module verdicts, as a table, JSON and a one-line summary."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import ExportError
from .criteria import (
    FLOAT64_ERROR_FACTOR,
    FLOOR_ULPS,
    SCALE_RELATIVE_TOLERANCE,
    Criterion,
    ModuleComparison,
    OutputComparison,
    UnlocalizedModule,
)

__all__ = ["ExecutionPath", "VerificationFailedError", "VerificationReport"]

#: What ran the exported model: onnxruntime with holocron's kernels, onnxruntime with the inlined standard-ONNX
#: fallback functions of the holocron ops, onnxruntime on a model without holocron ops, or a reloaded TorchScript
#: archive.
ExecutionPath = Literal["holocron-kernels", "onnx-fallback", "standard-onnx", "torchscript"]


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
        unlocalized_modules: how many modules were called but not compared (the length of ``unlocalized``).
        unlocalized: each module called but not compared, with the reason (called repeatedly, fused into another
            module's value, no nodes of its own, not one tensor...), in execution order.
        localization_method: how the eager module outputs were recorded (``forward hooks``, ``TorchScript graph``,
            ``torch.export graph``; empty without localization).
        localization_note: why localization was asked for but not done (``localize="best-effort"`` on a model or
            artifact that cannot be localized), else empty.
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
    unlocalized: tuple[UnlocalizedModule, ...] = ()
    localization_method: str = ""
    localization_note: str = ""

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
            "match": first.match,
            "fused_modules": list(first.fused_modules),
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
            f"{'PASSED' if self.passed else 'FAILED'}: {len(self.outputs)} output(s) at input "
            f"{', '.join('x'.join(map(str, shape)) for shape in self.input_shapes)}, execution path "
            f"{self.execution_path} (holocron ops: {ops}; providers: {', '.join(self.providers)}; seed {self.seed})"
        )
        lines.append(
            f"criterion: {self._criterion_text()}" + (f" ({self.criterion_note})" if self.criterion_note else "")
        )
        if self.localization_note:
            lines.append(f"localization: not done ({self.localization_note})")
        if self.localized:
            failed = self.divergent_modules
            lines.append(
                f"localization ({self.localization_method or 'forward hooks'}): {len(self.modules)} module(s) "
                f"compared, {len(failed)} diverge"
                + (f", {self.unlocalized_modules} not compared" if self.unlocalized_modules else "")
            )
            lines.extend(_unlocalized_lines(self.unlocalized))
            if failed:
                lines.append(_first_divergence_line(failed[0]))
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


#: Names listed per reason in the table (the JSON report lists them all).
_NAMES_PER_REASON = 6


def _unlocalized_lines(unlocalized: Sequence[UnlocalizedModule]) -> list[str]:
    """One line per reason: how many modules, and the first few with their details."""
    by_reason: dict[str, list[UnlocalizedModule]] = {}
    for mod in unlocalized:
        by_reason.setdefault(mod.reason, []).append(mod)
    lines = []
    for reason, mods in by_reason.items():
        shown = ", ".join(f"{mod.module} ({mod.detail})" for mod in mods[:_NAMES_PER_REASON])
        more = f", +{len(mods) - _NAMES_PER_REASON} more" if len(mods) > _NAMES_PER_REASON else ""
        lines.append(f"  not compared, {reason} ({len(mods)}): {shown}{more}")
    return lines


def _first_divergence_line(first: ModuleComparison) -> str:
    line = f"first divergence: module {first.module!r} (ONNX value {first.onnx_value!r})"
    if first.fused_modules:
        names = ", ".join(repr(name) for name in first.fused_modules)
        line += f"; the exporter fused {names} into it: the defect may be in {names} or {first.module!r}"
    return line


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


class VerificationFailedError(ExportError):
    """The exported model does not match eager PyTorch within tolerance.

    Args:
        message: one-line summary of the failing outputs.
        report: the full verification report.
    """

    def __init__(self, message: str, report: VerificationReport | None = None) -> None:
        super().__init__(message)
        self.report = report
