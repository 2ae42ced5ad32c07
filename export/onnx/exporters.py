"""Export a PyTorch model to ONNX with holocron's custom-op domain, through either torch exporter.

* ``exporter="dynamo"``: ``torch.onnx.export(dynamo=True)`` with holocron's onnxscript translations
  (``custom_translation_table``); ``torch.export`` traces the model.
* ``exporter="torchscript"``: ``torch.onnx.export(dynamo=False)`` with holocron's symbolic functions. This is also
  the path for ``torch.jit.script``-ed models and TorchScript archives, which ``torch.export`` cannot trace: a
  ``ScriptModule`` always goes through it, whichever exporter was asked for.

Both emit one ``holocron`` node per Add2d / Involution2d / LambdaLayer;
:func:`~holocron.export.onnx.finalize.finalize_onnx_model` then attaches the standard-ONNX fallback functions (or
inlines them for ``custom_ops=False``), names the graph inputs and outputs, and checks the model.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import onnx
import onnx.version_converter
import torch
from torch import nn

from holocron.contract import FIRST_OPSET, LAST_OPSET

from ..errors import ExportError, root_cause, summarize_error
from ..files import check_writable, write_bytes_atomically
from ..model.modes import eval_mode, mode_is_fixed
from .finalize import export_ops, finalize_onnx_model
from .graph import io_names, onnx_opset_of

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTERS",
    "FIRST_OPSET",
    "LAST_OPSET",
    "TORCHSCRIPT_MAX_OPSET",
    "Exporter",
    "to_onnx",
    "to_onnx_proto",
]

Exporter = Literal["dynamo", "torchscript"]
EXPORTERS: tuple[Exporter, ...] = ("dynamo", "torchscript")
#: Default ONNX opset: the newest one both exporters support. The supported range, ``FIRST_OPSET`` (18) to
#: ``LAST_OPSET`` (23), is the one the fallback functions are written for (:mod:`holocron.contract`).
DEFAULT_OPSET = 20
#: Newest ONNX opset the TorchScript exporter supports.
TORCHSCRIPT_MAX_OPSET = 20
#: ONNX protobuf size limit: bigger models would need external data, which this single-file export does not write.
_PROTOBUF_LIMIT = 2**31 - 1


def _as_tuple(args: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    if isinstance(args, torch.Tensor):
        return (args,)
    if not isinstance(args, Sequence) or not args:
        raise TypeError(f"args must be a tensor or a non-empty sequence of tensors, got {type(args).__name__}")
    for index, arg in enumerate(args):
        if not isinstance(arg, torch.Tensor):
            raise TypeError(f"args[{index}] must be a torch.Tensor, got {type(arg).__name__}")
    return tuple(args)


def _resolve_opset(opset: int | None, exporter: Exporter) -> int:
    if opset is None:
        return DEFAULT_OPSET
    highest = TORCHSCRIPT_MAX_OPSET if exporter == "torchscript" else LAST_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or not FIRST_OPSET <= opset <= highest:
        raise ValueError(
            f"opset must be an integer in [{FIRST_OPSET}, {highest}] for the {exporter} exporter, got {opset!r}"
        )
    return opset


def _custom_translation_table() -> dict[Any, Any]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``: holocron torch op -> onnxscript.

    Raises:
        ExportError: ``holocron.export.ops`` cannot be imported.
    """
    return dict(export_ops().custom_translation_table())


@functools.cache
def _register_symbolics(opset: int) -> None:
    """Register the TorchScript-exporter symbolic functions of the holocron ops for ``opset``, once per opset.

    Raises:
        ExportError: ``holocron.export.ops`` cannot be imported.
    """
    export_ops().register_torchscript_symbolics(opset)


def _export_dynamo(model: nn.Module, args: tuple[torch.Tensor, ...], dynamic_batch: bool) -> onnx.ModelProto:
    try:
        table = _custom_translation_table()
        missing_ops_reason = ""
    except ExportError as error:
        # Models without holocron ops still export; one with them fails below and the reason is given.
        table, missing_ops_reason = {}, f" ({error})"
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch")
        dynamic_shapes = tuple({0: batch} if arg.dim() > 0 else None for arg in args)
    try:
        program = torch.onnx.export(
            model,
            args,
            dynamo=True,
            custom_translation_table=table,
            dynamic_shapes=dynamic_shapes,
            verbose=False,
            optimize=True,
        )
    except Exception as error:
        # torch.onnx wraps the actual failure (from torch.export or a translation) in a generic ConversionError.
        cause = root_cause(error)
        reason = f"{type(cause).__name__}: {summarize_error(cause)}" if cause is not error else summarize_error(error)
        raise ExportError(f"dynamo exporter failed: {reason}{missing_ops_reason}") from error
    if program is None:
        raise ExportError("dynamo exporter returned no program")
    return program.model_proto


def _export_torchscript(
    model: nn.Module, args: tuple[torch.Tensor, ...], dynamic_batch: bool, opset: int
) -> onnx.ModelProto:
    try:
        _register_symbolics(opset)
        missing_ops_reason = ""
    except ExportError as error:
        missing_ops_reason = f" ({error})"
    names = io_names("input", len(args))
    dynamic_axes = {name: {0: "batch"} for name, arg in zip(names, args, strict=True) if arg.dim() > 0}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # Choosing the TorchScript exporter is deliberate here (scripted models need it): no deprecation noise.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            # holocron's own shape checks are traced as constants on purpose (the exported shapes are fixed or
            # symbolic by the exporter's rules); their TracerWarnings are noise to the user.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"holocron(\.|$)")
            torch.onnx.export(
                model,
                args,
                buffer,  # type: ignore[arg-type]  # file-like objects work too
                dynamo=False,
                opset_version=opset,
                input_names=names,
                dynamic_axes=dynamic_axes if dynamic_batch else None,
                do_constant_folding=True,
            )
    except Exception as error:
        raise ExportError(f"torchscript exporter failed: {summarize_error(error)}{missing_ops_reason}") from error
    return onnx.load_model_from_string(buffer.getvalue())


def _convert_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """Convert with onnx's version converter (torch's own conversion drops graph input types next to custom nodes)."""
    if onnx_opset_of(model) == opset:
        return model
    try:
        return onnx.version_converter.convert_version(model, opset)
    except Exception as error:
        reason = summarize_error(error)
        raise ExportError(f"cannot convert the exported model to ONNX opset {opset}: {reason}") from error


def _batch_of_two(args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Example inputs with batch size 2 in place of 1.

    ``torch.export`` specializes dimensions of size 1, so a batch-1 example would fix the batch dimension. The graph
    traced does not depend on the values.
    """
    return tuple(torch.cat([arg, arg]) if arg.dim() > 0 and arg.shape[0] == 1 else arg for arg in args)


def _check_batch_is_dynamic(model: onnx.ModelProto) -> None:
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initializers and dims and dims[0].HasField("dim_value"):
            why = (
                f"the exporter fixed the batch dimension of input {value.name!r} to {dims[0].dim_value}; the model "
                "specializes on its batch size (the module of a torch.export archive, for one, keeps the shapes it "
                "was exported with)"
            )
            raise ExportError(f"dynamic_batch: {why}", cli_message=f"--dynamic-batch: {why}")


def to_onnx_proto(
    model: nn.Module,
    args: torch.Tensor | Sequence[torch.Tensor],
    *,
    opset: int | None = None,
    dynamic_batch: bool = False,
    custom_ops: bool = True,
    exporter: Exporter = "dynamo",
) -> onnx.ModelProto:
    """Export ``model`` to an in-memory, checked ONNX model; see :func:`to_onnx` for the arguments."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (or ScriptModule), got {type(model).__name__}")
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    example = _as_tuple(args)
    if isinstance(model, torch.jit.ScriptModule):
        exporter = "torchscript"
    elif exporter == "torchscript" and mode_is_fixed(model):
        raise ValueError(
            "exporter='torchscript' cannot export the module of a torch.export archive (its mode is fixed); "
            "use exporter='dynamo'"
        )
    target_opset = _resolve_opset(opset, exporter)
    if dynamic_batch:
        example = _batch_of_two(example)
    with eval_mode(model):
        if exporter == "dynamo":
            exported = _convert_opset(_export_dynamo(model, example, dynamic_batch), target_opset)
        else:
            exported = _export_torchscript(model, example, dynamic_batch, target_opset)
    if dynamic_batch:
        _check_batch_is_dynamic(exported)
    return finalize_onnx_model(exported, custom_ops=custom_ops)


def to_onnx(
    model: nn.Module,
    args: torch.Tensor | Sequence[torch.Tensor],
    path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    dynamic_batch: bool = False,
    custom_ops: bool = True,
    exporter: Exporter = "dynamo",
    overwrite: bool = False,
) -> Path:
    """Export ``model`` to a single ONNX file, written atomically.

    The model is exported in eval mode (its mode is restored afterwards). Graph inputs are named ``input`` (or
    ``input_0, input_1, ...``) and outputs ``output`` (or ``output_0, ...``), whichever exporter ran. Add2d,
    Involution2d and LambdaLayer become one node each in the ``holocron`` domain (version 1), and the model carries
    the standard-ONNX fallback function of each such op, so a plain onnxruntime runs it too.

    Args:
        model: the module to export; a ``ScriptModule`` always uses the TorchScript exporter.
        args: example input tensor(s), one per ``forward`` argument.
        path: destination ``.onnx`` file.
        opset: ONNX opset (default ``DEFAULT_OPSET`` = 20): from ``FIRST_OPSET`` = 18 to ``LAST_OPSET`` = 23 for the
            dynamo exporter, to ``TORCHSCRIPT_MAX_OPSET`` = 20 for the TorchScript exporter.
        dynamic_batch: make dimension 0 of every input (and so of the outputs) symbolic (``batch``).
        custom_ops: keep ``holocron`` nodes; False inlines their fallbacks so only standard ONNX ops remain.
        exporter: ``"dynamo"`` (``torch.export`` based) or ``"torchscript"``.
        overwrite: replace ``path`` if it exists.

    Returns:
        ``path``.

    Raises:
        TypeError: an argument of the wrong type (named in the message).
        ValueError: an invalid argument value (named in the message).
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before exporting).
        ExportError: the exporter failed or the resulting model is invalid.
    """
    target = check_writable(path, overwrite=overwrite)
    proto = to_onnx_proto(
        model, args, opset=opset, dynamic_batch=dynamic_batch, custom_ops=custom_ops, exporter=exporter
    )
    data = proto.SerializeToString()
    if len(data) > _PROTOBUF_LIMIT:
        raise ExportError(f"exported model is {len(data)} bytes, over the 2 GiB single-file ONNX limit")
    return write_bytes_atomically(target, data, overwrite=overwrite)
