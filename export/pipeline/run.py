"""Carrying out a checked request: load, export, verify, write (:func:`run_export`), and the Triton entry point of
the Python API (:func:`to_triton`), which is the same path."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import onnx
import torch
from torch import nn

from holocron._jit import jit_deprecation_silenced

from ..errors import ExportError, ModelLoadError
from ..files import write_bytes_atomically
from ..model.inputs import check_input_size, check_inputs, make_inputs
from ..model.loading import load_model
from ..model.modes import eval_mode
from ..onnx.exporters import Exporter, to_onnx_proto
from ..onnx.graph import holocron_nodes
from ..parity.api import verify, verify_torchscript
from ..parity.report import VerificationFailedError, VerificationReport
from ..torchscript import TracingFallbackWarning, to_script_module
from ..triton import (
    DEFAULT_SERVER_REPOSITORY,
    Backend,
    InstanceKind,
    ModelSignature,
    TorchScriptModel,
    TritonOptions,
    write_repository,
)
from .request import ExportPlan, ExportRequest, ExportResult, prepare_export

__all__ = ["run_export", "to_triton"]

#: Batch size of the verification inputs of a dynamic-batch export (the export itself uses the given shapes).
_DYNAMIC_BATCH_CHECK = 3


def _load(plan: ExportPlan) -> tuple[nn.Module, tuple[tuple[int, ...], ...]]:
    """The module and the input shapes to use."""
    request = plan.request
    if request.module is not None:
        return request.module, request.input_shapes
    if request.demo:
        from ..model.demo import DEMO_INPUT_SHAPE, build_demo_model

        return build_demo_model(), request.input_shapes or (DEMO_INPUT_SHAPE,)
    assert request.model_path is not None  # prepare_export checked it
    loaded = load_model(request.model_path, trust_pickle=request.trust_pickle, kind=plan.model_kind)
    if request.input_shapes:
        return loaded.module, request.input_shapes
    if loaded.example_inputs is not None:
        return loaded.module, tuple(tuple(t.shape) for t in loaded.example_inputs)
    why = f"a {loaded.kind} model records no input shape"
    raise ModelLoadError(
        f"`input_shapes` is required: {why}", cli_message=f"--input-shape is required: {why} (e.g. 1,3,224,224)"
    )


def _verification_shapes(request: ExportRequest, shapes: tuple[tuple[int, ...], ...]) -> list[list[tuple[int, ...]]]:
    """The input shapes of each verification run."""
    if request.triton is not None and request.triton.max_batch_size > 0:
        # The smallest and the largest batch the server will form; also proves the batch dimension is dynamic.
        batches = sorted({1, request.triton.max_batch_size})
        for batch in batches[1:]:  # refused before the export, not when the inputs are allocated
            check_input_size([(batch, *s[1:]) for s in shapes], source="the largest batch", flag="--max-batch-size")
    elif request.output_format == "onnx" and request.dynamic_batch:
        # Verify at another batch size than the export's, so a batch dimension that is not dynamic shows up.
        batches = [_DYNAMIC_BATCH_CHECK]
    else:
        return [list(shapes)]
    return [[(batch, *shape[1:]) if shape else shape for shape in shapes] for batch in batches]


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
            with jit_deprecation_silenced():
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
    with jit_deprecation_silenced():
        reloaded = torch.jit.load(io.BytesIO(exported), map_location="cpu")
    return verify_torchscript(model, reloaded, shapes, atol=request.atol, rtol=request.rtol, seed=request.seed)


def run_export(request: ExportRequest | ExportPlan, *, progress: Callable[[str], None] | None = None) -> ExportResult:
    """Run the whole pipeline; see the module docstring for the order and guarantees.

    Args:
        request: what to export, how, and where (checked by :func:`prepare_export` first), or a plan already made.
        progress: called with a short line at the start of each stage (load, export, verify, write).

    Returns:
        The written file, the verification reports and notes for the user.

    Raises:
        ValueError, TypeError: an invalid request, or inputs the model rejects.
        ExportError: the model file cannot be used (``ModelLoadError``), an output exists and ``force`` is False
            (``OutputExistsError``), or the export fails.
        VerificationFailedError: the exported model does not match eager PyTorch (nothing is written but the
            report); the failing report is attached as ``error.report``.
    """
    plan = request if isinstance(request, ExportPlan) else prepare_export(request)
    request = plan.request
    say = progress or (lambda stage: None)
    say(f"loading {request.model_path}" if request.model_path is not None else "building the model")
    model, shapes = _load(plan)
    inputs = request.example_inputs or make_inputs(shapes, seed=request.seed)
    check_inputs(model, inputs)
    verification_shapes = _verification_shapes(request, shapes) if request.verify else []
    notes: list[str] = []
    exported: onnx.ModelProto | bytes
    say("exporting to TorchScript" if request.writes_torchscript else "exporting to ONNX")
    if request.writes_torchscript:
        exported = data = _export_torchscript(model, inputs, notes)
    else:
        exported = _export_onnx(request, model, inputs, notes)
        data = exported.SerializeToString()
    triton: tuple[onnx.ModelProto | TorchScriptModel, TritonOptions, str | None] | None = None
    if request.triton is not None:  # what the server needs is known now: checked before the verification
        triton = _repository_model(request.triton, exported, inputs, notes)
    reports: list[VerificationReport] = []
    for batch_shapes in verification_shapes:
        at = ", ".join("x".join(map(str, shape)) for shape in batch_shapes)
        say(f"verifying against eager PyTorch at input {at}" + (" with localization" if request.localize else ""))
        reports.append(_verify(request, model, exported, batch_shapes))
        if not reports[-1].passed:
            break
    if reports and request.report_path is not None:
        write_bytes_atomically(request.report_path, (reports[-1].to_json() + "\n").encode(), overwrite=request.force)
    if reports and not reports[-1].passed:
        raise VerificationFailedError(f"{reports[-1].failure_summary()}; output not written", reports[-1])
    output = plan.output
    say(f"writing {output}")
    if triton is not None:
        served, options, library = triton
        output = write_repository(served, output, options, library=library, overwrite=request.force)
    else:
        write_bytes_atomically(output, data, overwrite=request.force)
    return ExportResult(output=output, reports=tuple(reports), notes=tuple(notes))


def _repository_model(
    options: TritonOptions, exported: onnx.ModelProto | bytes, inputs: tuple[torch.Tensor, ...], notes: list[str]
) -> tuple[onnx.ModelProto | TorchScriptModel, TritonOptions, str | None]:
    """The model to write into the repository, its options and the op library to copy beside it (None: none).

    Raises:
        ExportError: a TorchScript archive that calls ``holocron::*`` ops asks for GPU instances (the torch op
            library has CPU kernels only), or the torch op library is not built.
    """
    if isinstance(exported, onnx.ModelProto):
        if not options.op_library or not holocron_nodes(exported):
            return exported, options, None
        from holocron.runtime import library_path

        return exported, options, library_path()
    with jit_deprecation_silenced():
        reloaded = torch.jit.load(io.BytesIO(exported), map_location="cpu")
    with torch.no_grad():
        returned = reloaded(*inputs)
    outputs = (returned,) if isinstance(returned, torch.Tensor) else returned
    if not isinstance(outputs, (tuple, list)) or not all(isinstance(t, torch.Tensor) for t in outputs):
        raise ExportError(
            f"Triton's PyTorch backend serves models that return a tensor or a tuple of tensors; this one returns "
            f"{type(returned).__name__}"
        )
    served = TorchScriptModel(exported, ModelSignature.of_tensors(inputs, tuple(outputs)))
    if not _calls_holocron_ops(exported):
        return served, options, None
    if options.instance_kind == "gpu":
        why = "the model calls holocron ops and holocron's torch op library has CPU kernels only"
        raise ExportError(
            f"`instance_kind` 'gpu' cannot serve it on Triton's PyTorch backend: {why}; use 'cpu', or the "
            "onnxruntime backend",
            cli_message=f"--instance-kind gpu cannot serve it with --backend pytorch: {why}; use --instance-kind cpu, "
            "or --backend onnxruntime",
        )
    if options.instance_kind == "auto":
        notes.append(
            "the model calls holocron ops, whose torch op library has CPU kernels only: the PyTorch backend's "
            "instances are pinned to the CPU (KIND_CPU)"
        )
        options = replace(options, instance_kind="cpu")
    from holocron.ops import TorchLibraryNotBuiltError, torch_library_path

    try:
        return served, options, torch_library_path()
    except TorchLibraryNotBuiltError as error:
        raise ExportError(f"Triton's PyTorch backend needs holocron's torch op library here: {error}") from None


def _calls_holocron_ops(archive: bytes) -> bool:
    """Whether a TorchScript archive (the bytes ``torch.jit.save`` wrote) calls ``holocron::*`` ops anywhere: its
    serialized code says ``ops.holocron.<op>`` for each call."""
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        for name in files.namelist():
            if "/code/" in name and name.endswith(".py") and b"ops.holocron." in files.read(name):
                return True
    return False


def to_triton(
    model: nn.Module,
    args: torch.Tensor | Sequence[torch.Tensor],
    repository: str | Path,
    *,
    model_name: str,
    model_version: int = 1,
    max_batch_size: int = 0,
    instance_kind: InstanceKind = "auto",
    instances: int = 1,
    op_library_path: str | None = None,
    server_repository: str = DEFAULT_SERVER_REPOSITORY,
    op_library: bool = True,
    backend: Backend = "onnxruntime",
    opset: int | None = None,
    exporter: Exporter | None = None,
    custom_ops: bool = True,
    verify: bool = True,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` (to ONNX, or to TorchScript for ``backend="pytorch"``), verify it against eager PyTorch, and
    write it into a Triton model repository.

    The same pipeline as ``holocron-export --format triton``: with ``max_batch_size`` > 0 the model is exported with
    a dynamic batch dimension and verified at batch 1 and at ``max_batch_size``. The op library is copied next to the
    config when the model needs it (``holocron`` nodes, or ``holocron::*`` calls in the archive).

    Args:
        model: the module to export.
        args: example input tensor(s) (batch 1 recommended).
        repository: the model repository folder.
        model_name: the model's folder and Triton name.
        model_version, max_batch_size, instance_kind, instances, op_library_path, server_repository, op_library,
            backend: see :class:`~holocron.export.triton.TritonOptions`.
        opset, exporter, custom_ops, verify: see :class:`ExportRequest` (the first three: ONNX only).
        overwrite: replace an existing model of that name (other models are never touched).

    Returns:
        The model folder ``repository/model_name``.

    Raises:
        OutputExistsError: the model exists and ``overwrite`` is False (checked before any work).
        VerificationFailedError: the export diverges from eager PyTorch; nothing is written.
        ValueError: invalid options.
        ExportError: see :func:`run_export`; with ``backend="pytorch"``, also a model calling holocron ops on GPU
            instances or without the torch op library built.
    """
    layout = (
        model_version, max_batch_size, instance_kind, instances, op_library_path, server_repository, op_library, backend
    )  # fmt: skip
    options = TritonOptions(model_name, *layout)
    example = (args,) if isinstance(args, torch.Tensor) else tuple(args)
    request = ExportRequest(
        module=model,
        example_inputs=example,
        input_shapes=tuple(tuple(t.shape) for t in example),
        output_format="triton",
        output=Path(repository),
        opset=opset,
        exporter=exporter,
        custom_ops=custom_ops,
        verify=verify,
        force=overwrite,
        triton=options,
    )
    return run_export(request).output
