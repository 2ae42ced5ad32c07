"""The result of comparing an exported model with eager PyTorch: per-output errors, tolerances and a verdict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["ExecutionPath", "OutputComparison", "VerificationReport"]

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
