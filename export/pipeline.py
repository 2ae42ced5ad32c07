"""The export pipeline behind ``holocron-export``: load, export, verify, then write, all or nothing.

:func:`run_export` calls each stage once, in order, and no stage calls back into another's caller:

1. :mod:`~holocron.export.files` checks the output paths before any work (an existing file is kept unless
   ``force``);
2. :mod:`~holocron.export.model_loading` loads the model (or :mod:`~holocron.export.demo` builds the demo), makes
   seeded inputs and checks the model takes them;
3. :mod:`~holocron.export.onnx_export` or :mod:`~holocron.export.torchscript_export` exports it in memory;
4. :mod:`~holocron.export.verification` compares the result with eager PyTorch;
5. :mod:`~holocron.export.files` writes the JSON report, when asked for, whatever the verdict, then the model, only
   if it passed, atomically.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx
import torch
from torch import nn

from .errors import ModelLoadError, VerificationFailedError
from .files import check_outputs, write_bytes_atomically
from .model_loading import check_inputs, eval_mode, load_model, make_inputs
from .onnx_export import Exporter, to_onnx_proto
from .onnx_graph import holocron_nodes
from .torchscript_export import TracingFallbackWarning, to_script_module
from .triton import TritonOptions, check_repository_slot, write_repository
from .verification import VerificationReport, verify, verify_torchscript

__all__ = ["ExportRequest", "ExportResult", "OutputFormat", "default_output_path", "run_export"]

OutputFormat = Literal["onnx", "torchscript", "triton"]
_SUFFIXES: dict[OutputFormat, str] = {"onnx": ".onnx", "torchscript": ".pt", "triton": ""}
#: Default folder of a Triton model repository (``--format triton`` without ``-o``).
DEFAULT_TRITON_REPOSITORY = Path("model_repository")
_DEMO_STEM = "holocron-demo"
#: Batch size of the verification inputs of a dynamic-batch export (the export itself uses the given shapes).
_DYNAMIC_BATCH_CHECK = 3


@dataclass(frozen=True)
class ExportRequest:
    """What to export, how, and where.

    Args:
        model_path: model file; None with ``demo``.
        demo: export the built-in demo model instead of a file.
        output_format: ``onnx``, ``torchscript`` or ``triton`` (an ONNX model in a Triton model repository).
        output: destination; None derives it from ``model_path`` (or the demo name) and the format's suffix.
        input_shapes: one shape per model input; empty uses the shapes recorded in the model when there are some.
        opset: ONNX opset (ONNX only; None = default).
        dynamic_batch: symbolic batch dimension (ONNX only).
        exporter: torch exporter (ONNX only); None picks dynamo, or the TorchScript exporter for a TorchScript
            model (which ``torch.export`` cannot trace).
        custom_ops: keep ``holocron`` nodes (ONNX only).
        verify: compare with eager PyTorch before writing.
        atol: absolute tolerance of a strict element-wise verification (None with ``rtol`` None: the default
            float64-referenced criterion, see :mod:`~holocron.export.verification`).
        rtol: relative tolerance of a strict element-wise verification.
        seed: seed of the random inputs.
        report_path: where to write the JSON verification report, if anywhere.
        localize: also compare every module's output with the matching ONNX value (ONNX only).
        force: replace existing output/report files (with ``triton``: an existing model of that name).
        trust_pickle: allow loading a pickled model (runs arbitrary code from the file).
        triton: name, version, batching and instances of the repository model (``triton`` only; required there).
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
    atol: float | None = None
    rtol: float | None = None
    seed: int = 0
    report_path: Path | None = None
    localize: bool = False
    force: bool = False
    trust_pickle: bool = False
    triton: TritonOptions | None = None


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
    """The model path with the format's suffix (``model.pt2`` -> ``model.onnx``), or ``holocron-demo.<suffix>``.

    A Triton model repository defaults to ``model_repository`` in the working directory.
    """
    if request.output_format == "triton":
        return DEFAULT_TRITON_REPOSITORY
    suffix = _SUFFIXES[request.output_format]
    if request.model_path is None:
        return Path(_DEMO_STEM + suffix)
    return request.model_path.with_suffix(suffix)


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
    if request.triton is not None and request.triton.max_batch_size > 0:
        # The largest batch the server will form; also proves the batch dimension is dynamic.
        return [(request.triton.max_batch_size, *shape[1:]) if shape else shape for shape in shapes]
    if request.output_format == "onnx" and request.dynamic_batch:
        # Verify at another batch size than the export's, so a batch dimension that is not dynamic shows up.
        return [(_DYNAMIC_BATCH_CHECK, *shape[1:]) if shape else shape for shape in shapes]
    return list(shapes)


def _export_onnx(
    request: ExportRequest, model: nn.Module, inputs: tuple[torch.Tensor, ...], notes: list[str]
) -> onnx.ModelProto:
    scripted = isinstance(model, torch.jit.ScriptModule)
    if scripted and request.exporter == "dynamo":
        notes.append("a TorchScript model cannot go through torch.export; the TorchScript exporter was used")
    return to_onnx_proto(
        model,
        inputs,
        opset=request.opset,
        dynamic_batch=request.dynamic_batch or (request.triton is not None and request.triton.max_batch_size > 0),
        custom_ops=request.custom_ops,
        exporter=request.exporter or ("torchscript" if scripted else "dynamo"),
    )


def _export_torchscript(model: nn.Module, inputs: tuple[torch.Tensor, ...], notes: list[str]) -> bytes:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TracingFallbackWarning)
        with eval_mode(model):
            scripted = to_script_module(model, inputs)
            buffer = io.BytesIO()
            torch.jit.save(scripted, buffer)
    notes.extend(str(w.message) for w in caught if issubclass(w.category, TracingFallbackWarning))
    return buffer.getvalue()


def _verify(
    request: ExportRequest, model: nn.Module, exported: onnx.ModelProto | bytes, shapes: list[tuple[int, ...]]
) -> VerificationReport:
    """Compare the exported model (an ONNX proto or the bytes of a TorchScript archive) with eager ``model``."""
    if isinstance(exported, onnx.ModelProto):
        return verify(
            model, exported, shapes, atol=request.atol, rtol=request.rtol, seed=request.seed, localize=request.localize
        )
    reloaded = torch.jit.load(io.BytesIO(exported), map_location="cpu")
    return verify_torchscript(model, reloaded, shapes, atol=request.atol, rtol=request.rtol, seed=request.seed)


def run_export(request: ExportRequest) -> ExportResult:
    """Run the whole pipeline for ``request``; see the module docstring for the order and guarantees.

    Args:
        request: what to export, how, and where.

    Returns:
        The written file, the verification report and notes for the user.

    Raises:
        ValueError: invalid request, or inputs the model rejects.
        TypeError: invalid request values.
        ModelLoadError: the model file cannot be used.
        OutputExistsError: an output exists and ``force`` is False.
        ExportError: export failure.
        VerificationFailedError: the exported model does not match eager PyTorch (nothing is written but the
            report); the report is attached as ``error.report``.
    """
    if request.output_format not in _SUFFIXES:
        raise ValueError(f"output format must be onnx, torchscript or triton, got {request.output_format!r}")
    if (request.output_format == "triton") != (request.triton is not None):
        raise ValueError("`triton` options go with output_format='triton', and only with it")
    output = request.output or default_output_path(request)
    if request.triton is not None:
        check_repository_slot(output, request.triton.model_name, overwrite=request.force)
        if request.report_path is not None:
            check_outputs(request.report_path, model=request.model_path, overwrite=request.force)
    else:
        check_outputs(output, report=request.report_path, model=request.model_path, overwrite=request.force)

    model, shapes = _load(request)
    inputs = make_inputs(shapes, seed=request.seed)
    check_inputs(model, inputs)
    notes: list[str] = []
    exported: onnx.ModelProto | bytes
    if request.output_format in ("onnx", "triton"):
        exported = _export_onnx(request, model, inputs, notes)
        data = exported.SerializeToString()
    else:
        exported = data = _export_torchscript(model, inputs, notes)
    report = _verify(request, model, exported, _verification_inputs(request, shapes)) if request.verify else None

    if report is not None and request.report_path is not None:
        write_bytes_atomically(request.report_path, (report.to_json() + "\n").encode(), overwrite=request.force)
    if report is not None and not report.passed:
        raise VerificationFailedError(f"{report.failure_summary()}; output not written", report)
    if request.triton is not None and isinstance(exported, onnx.ModelProto):
        output = write_repository(
            exported, output, request.triton, library=_op_library(exported), overwrite=request.force
        )
    else:
        write_bytes_atomically(output, data, overwrite=request.force)
    return ExportResult(output=output, report=report, notes=tuple(notes))


def _op_library(model: onnx.ModelProto) -> str | None:
    """holocron's op library when ``model`` has holocron nodes (the server needs it), else None."""
    if not holocron_nodes(model):
        return None
    from holocron.runtime import library_path

    return library_path()
