"""The export pipeline behind ``holocron-export``: load, export, verify, then write, all or nothing.

Order matters for the guarantees of the command line: the output paths are checked before any work (an existing
file is kept unless ``force``), the model is exported and verified in memory, and only a model that passed
verification is written, atomically. The JSON report, when asked for, is written whatever the verdict.
"""

from __future__ import annotations

import inspect
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .atomic_write import check_writable, write_bytes_atomically
from .errors import ModelLoadError, VerificationFailedError, summarize_error
from .input_specs import make_inputs
from .model_loading import load_model
from .model_mode import eval_mode
from .onnx_export import Exporter, to_onnx_proto
from .torchscript_export import TracingFallbackWarning, to_script_module
from .verification import verify, verify_torchscript
from .verification_report import VerificationReport

__all__ = ["ExportRequest", "ExportResult", "OutputFormat", "default_output_path", "run_export"]

OutputFormat = Literal["onnx", "torchscript"]
_SUFFIXES: dict[OutputFormat, str] = {"onnx": ".onnx", "torchscript": ".pt"}
_DEMO_STEM = "holocron-demo"
#: Batch size of the verification inputs of a dynamic-batch export (the export itself uses the given shapes).
_DYNAMIC_BATCH_CHECK = 3


@dataclass(frozen=True)
class ExportRequest:
    """What to export, how, and where.

    Args:
        model_path: model file; None with ``demo``.
        demo: export the built-in demo model instead of a file.
        output_format: ``onnx`` or ``torchscript``.
        output: destination; None derives it from ``model_path`` (or the demo name) and the format's suffix.
        input_shapes: one shape per model input; empty uses the shapes recorded in the model when there are some.
        opset: ONNX opset (ONNX only; None = default).
        dynamic_batch: symbolic batch dimension (ONNX only).
        exporter: torch exporter (ONNX only); None picks dynamo, or the TorchScript exporter for a TorchScript
            model (which ``torch.export`` cannot trace).
        custom_ops: keep ``holocron`` nodes (ONNX only).
        verify: compare with eager PyTorch before writing.
        atol: absolute tolerance of the verification.
        rtol: relative tolerance of the verification.
        seed: seed of the random inputs.
        report_path: where to write the JSON verification report, if anywhere.
        force: replace existing output/report files.
        trust_pickle: allow loading a pickled model (runs arbitrary code from the file).
    """

    model_path: Path | None = None
    demo: bool = False
    output_format: OutputFormat = "onnx"
    output: Path | None = None
    input_shapes: tuple[tuple[int, ...], ...] = ()
    opset: int | None = None
    dynamic_batch: bool = False
    exporter: Exporter | None = None
    custom_ops: bool = True
    verify: bool = True
    atol: float = 1e-5
    rtol: float = 1e-4
    seed: int = 0
    report_path: Path | None = None
    force: bool = False
    trust_pickle: bool = False


@dataclass(frozen=True)
class ExportResult:
    """What :func:`run_export` did.

    Args:
        output: the written file.
        report: the verification report (None without verification).
        notes: remarks for the user (e.g. the tracing fallback).
    """

    output: Path
    report: VerificationReport | None
    notes: tuple[str, ...] = ()


def default_output_path(request: ExportRequest) -> Path:
    """The model path with the format's suffix (``model.pt2`` -> ``model.onnx``), or ``holocron-demo.<suffix>``."""
    suffix = _SUFFIXES[request.output_format]
    if request.model_path is None:
        return Path(_DEMO_STEM + suffix)
    return request.model_path.with_suffix(suffix)


def _positional_arity(model: nn.Module) -> tuple[int, int | None] | None:
    """(required, maximum) positional inputs of ``model.forward`` (maximum None for ``*args``), None if unknown."""
    if isinstance(model, torch.jit.ScriptModule):
        try:
            arguments = model.forward.schema.arguments[1:]  # drop self
        except (AttributeError, RuntimeError):
            return None
        required = sum(1 for arg in arguments if not arg.has_default_value())
        return required, len(arguments)
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    required = sum(1 for p in positional if p.default is p.empty)
    return required, len(positional)


def _check_inputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Fail early, with a clear message, on inputs the model cannot take."""
    arity = _positional_arity(model)
    if arity is not None:
        required, maximum = arity
        if not required <= len(inputs) <= (maximum if maximum is not None else len(inputs)):
            expected = str(required) if required == maximum else f"{required} to {maximum}"
            raise ValueError(f"the model takes {expected} input(s) but {len(inputs)} --input-shape value(s) were given")
    shapes = ", ".join(",".join(map(str, t.shape)) for t in inputs)
    try:
        with eval_mode(model), torch.no_grad():
            model(*inputs)
    except Exception as error:
        raise ValueError(f"the model rejects inputs of shape {shapes}: {summarize_error(error)}") from error


def _load(request: ExportRequest) -> tuple[nn.Module, tuple[tuple[int, ...], ...]]:
    """The module and the input shapes to use."""
    if request.demo:
        from .demo import DEMO_INPUT_SHAPE, build_demo_model

        return build_demo_model(), request.input_shapes or (DEMO_INPUT_SHAPE,)
    if request.model_path is None:
        raise ValueError("a MODEL path is required unless the demo model is used (--demo)")
    loaded = load_model(request.model_path, trust_pickle=request.trust_pickle)
    if request.input_shapes:
        return loaded.module, request.input_shapes
    if loaded.example_inputs is not None:
        return loaded.module, tuple(tuple(t.shape) for t in loaded.example_inputs)
    raise ModelLoadError(
        f"--input-shape is required: a {loaded.kind} model records no input shape (e.g. --input-shape 1,3,224,224)"
    )


def _verification_inputs(request: ExportRequest, shapes: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
    if request.output_format == "onnx" and request.dynamic_batch:
        # Verify at another batch size than the export's, so a batch dimension that is not dynamic shows up.
        return [(_DYNAMIC_BATCH_CHECK, *shape[1:]) if shape else shape for shape in shapes]
    return list(shapes)


def _export_onnx(
    request: ExportRequest,
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    shapes: list[tuple[int, ...]],
    notes: list[str],
) -> tuple[bytes, VerificationReport | None]:
    scripted = isinstance(model, torch.jit.ScriptModule)
    if scripted and request.exporter == "dynamo":
        notes.append("a TorchScript model cannot go through torch.export; the TorchScript exporter was used")
    proto = to_onnx_proto(
        model,
        inputs,
        opset=request.opset,
        dynamic_batch=request.dynamic_batch,
        custom_ops=request.custom_ops,
        exporter=request.exporter or ("torchscript" if scripted else "dynamo"),
    )
    report = (
        verify(model, proto, shapes, atol=request.atol, rtol=request.rtol, seed=request.seed)
        if request.verify
        else None
    )
    return proto.SerializeToString(), report


def _export_torchscript(
    request: ExportRequest,
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    shapes: list[tuple[int, ...]],
    notes: list[str],
) -> tuple[bytes, VerificationReport | None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TracingFallbackWarning)
        with eval_mode(model):
            scripted = to_script_module(model, inputs)
            buffer = io.BytesIO()
            torch.jit.save(scripted, buffer)
    notes.extend(str(w.message) for w in caught if issubclass(w.category, TracingFallbackWarning))
    data = buffer.getvalue()
    report = None
    if request.verify:
        reloaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        report = verify_torchscript(model, reloaded, shapes, atol=request.atol, rtol=request.rtol, seed=request.seed)
    return data, report


def _failure_summary(report: VerificationReport) -> str:
    failed = [out for out in report.outputs if not out.passed]
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
        f"verification failed ({'; '.join(parts)}{more}; atol {report.outputs[0].atol:g}, "
        f"rtol {report.outputs[0].rtol:g}); output not written"
    )


def run_export(request: ExportRequest) -> ExportResult:
    """Run the whole pipeline for ``request``; see the module docstring for the order and guarantees.

    Raises:
        ValueError / TypeError: invalid request or inputs the model rejects.
        ModelLoadError: the model file cannot be used.
        OutputExistsError: an output exists and ``force`` is False.
        ExportError: export failure.
        VerificationFailedError: the exported model does not match eager PyTorch (nothing is written but the
            report); the report is attached as ``error.report``.
    """
    if request.output_format not in _SUFFIXES:
        raise ValueError(f"output format must be onnx or torchscript, got {request.output_format!r}")
    output = request.output or default_output_path(request)
    if request.model_path is not None and output.resolve() == request.model_path.resolve():
        raise ValueError(f"the output path {str(output)!r} is the MODEL file itself; choose another with -o")
    check_writable(output, overwrite=request.force)
    if request.report_path is not None:
        check_writable(request.report_path, overwrite=request.force)

    model, shapes = _load(request)
    inputs = make_inputs(shapes, seed=request.seed)
    _check_inputs(model, inputs)
    check_shapes = _verification_inputs(request, shapes)
    notes: list[str] = []
    if request.output_format == "onnx":
        data, report = _export_onnx(request, model, inputs, check_shapes, notes)
    else:
        data, report = _export_torchscript(request, model, inputs, check_shapes, notes)

    if report is not None and request.report_path is not None:
        write_bytes_atomically(request.report_path, (report.to_json() + "\n").encode(), overwrite=request.force)
    if report is not None and not report.passed:
        raise VerificationFailedError(_failure_summary(report), report)
    write_bytes_atomically(output, data, overwrite=request.force)
    return ExportResult(output=output, report=report, notes=tuple(notes))
