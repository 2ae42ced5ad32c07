"""Make an exporter's output a checked, self-contained ``holocron`` model.

:func:`finalize_onnx_model` runs after either torch exporter: exporter-made local functions are inlined, the
``holocron`` opset import is set (version :data:`holocron.contract.DOMAIN_VERSION`), every ``holocron`` node gets its
specialised standard-ONNX fallback function (:mod:`holocron.export.onnx.ops`), or with ``custom_ops=False`` the
fallbacks are inlined so that only standard ONNX remains, the graph inputs and outputs get stable names
(:func:`~holocron.export.onnx.graph.rename_graph_io`), and the ONNX checker runs with the ``holocron`` schemas.
"""

from __future__ import annotations

import functools
from types import ModuleType

import onnx
import onnx.inliner

from holocron.contract import DOMAIN as HOLOCRON_DOMAIN
from holocron.contract import DOMAIN_VERSION as HOLOCRON_DOMAIN_VERSION
from holocron.contract import OPS

from ..errors import ExportError, summarize_error
from .graph import holocron_nodes, onnx_opset_of, rename_graph_io

__all__ = ["check_onnx_model", "ensure_schemas_registered", "export_ops", "finalize_onnx_model"]


def export_ops() -> ModuleType:
    """``holocron.export.ops``, imported on first use.

    ``holocron.export`` imports, and exports models without holocron's custom ops, even where the per-op export
    pieces cannot be imported (``onnxscript`` missing, say); the error comes only when a model needs them.

    Raises:
        ExportError: ``holocron.export.ops`` cannot be imported.
    """
    try:
        from . import ops
    except ImportError as error:
        raise ExportError(
            f"holocron's ONNX op exports unavailable: cannot import holocron.export.ops ({error})"
        ) from error
    return ops


@functools.cache
def ensure_schemas_registered() -> None:
    """Register the ``holocron`` ONNX schemas with ``onnx.defs`` (for the checker and the dynamo translations), once.

    Raises:
        ExportError: ``holocron.export.ops`` cannot be imported.
    """
    export_ops().register_schemas()


def _set_holocron_import(model: onnx.ModelProto, present: bool) -> None:
    kept = [entry for entry in model.opset_import if entry.domain != HOLOCRON_DOMAIN]
    for entry in model.opset_import:
        if entry.domain == HOLOCRON_DOMAIN and entry.version != HOLOCRON_DOMAIN_VERSION:
            raise ExportError(
                f"exported model imports {HOLOCRON_DOMAIN} version {entry.version}; "
                f"this holocron implements version {HOLOCRON_DOMAIN_VERSION}"
            )
    del model.opset_import[:]
    model.opset_import.extend(kept)
    if present:
        model.opset_import.append(onnx.helper.make_opsetid(HOLOCRON_DOMAIN, HOLOCRON_DOMAIN_VERSION))


def _attach_fallbacks(model: onnx.ModelProto) -> None:
    """Replace any holocron-domain local functions by one fallback body per holocron node.

    Each body is specialised to its node's attributes and static weight shapes and selected through the node's
    function ``overload`` (ONNX IR 10), so it needs no control flow (see ``holocron.export.ops``).
    """
    try:
        export_ops().attach_fallback_functions(model, onnx_opset_of(model))
    except ValueError as error:
        raise ExportError(f"cannot attach the fallback functions: {error}") from error


def _inline_holocron_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    ids = [(fn.domain, fn.name) for fn in model.functions if fn.domain == HOLOCRON_DOMAIN]
    inlined = onnx.inliner.inline_selected_functions(model, ids)
    remaining = [fn for fn in inlined.functions if fn.domain != HOLOCRON_DOMAIN]
    del inlined.functions[:]
    inlined.functions.extend(remaining)
    if holocron_nodes(inlined):
        raise ExportError("inlining the holocron fallback functions left holocron nodes in the model")
    _set_holocron_import(inlined, present=False)
    return inlined


def check_onnx_model(model: onnx.ModelProto) -> None:
    """Run ``onnx.checker.check_model(full_check=True)`` with the holocron schemas registered.

    Raises:
        ExportError: the model fails the checker.
    """
    if any(entry.domain == HOLOCRON_DOMAIN for entry in model.opset_import):
        ensure_schemas_registered()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"the exported ONNX model is invalid: {summarize_error(error)}") from error


def finalize_onnx_model(model: onnx.ModelProto, *, custom_ops: bool) -> onnx.ModelProto:
    """Make an exporter's output a checked, self-contained model (see the module docstring).

    Args:
        model: the model produced by ``torch.onnx.export``; modified in place and returned (or an inlined copy).
        custom_ops: keep ``holocron`` nodes (with fallback functions) if True, inline them to standard ONNX if False.

    Returns:
        The finalized model.

    Raises:
        ExportError: unknown holocron op types, a missing fallback, or a model failing the ONNX checker.
    """
    if model.functions:
        # Exporter-made local functions (translations emitted as functions, legacy helpers) are inlined so that the
        # only local functions left are the fallbacks attached below.
        model = onnx.inliner.inline_local_functions(model)
        del model.functions[:]
    op_types = {node.op_type for node in holocron_nodes(model)}
    unknown = op_types - {op.onnx_name for op in OPS}
    if unknown:
        raise ExportError(f"exported model has holocron op(s) {sorted(unknown)} that the op contract does not define")
    _set_holocron_import(model, present=bool(op_types))
    _attach_fallbacks(model)
    if not custom_ops and op_types:
        model = _inline_holocron_functions(model)
    rename_graph_io(model)
    _static_output_dims(model)
    check_onnx_model(model)
    return model


def _static_output_dims(model: onnx.ModelProto) -> None:
    """Declare the graph outputs' dimensions that shape inference proves static (in place).

    The TorchScript exporter names every output dimension of a custom op symbolically (``Lambda23_dim_1``), so a
    server cannot check shapes and clients cannot preallocate. ONNX shape inference, with the ``holocron`` schemas
    registered, finds the static ones; a dimension it cannot prove keeps its symbol, except that an unproven first
    dimension takes the name of the first input's symbolic batch dimension.
    """
    if any(entry.domain == HOLOCRON_DOMAIN for entry in model.opset_import):
        ensure_schemas_registered()
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for output in probe.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
        return
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    first = inputs[0].type.tensor_type.shape.dim if inputs else []
    batch = first[0].dim_param if first and first[0].HasField("dim_param") else None
    for declared, found in zip(model.graph.output, inferred.graph.output, strict=True):
        if not declared.type.tensor_type.HasField("shape") or not found.type.tensor_type.HasField("shape"):
            continue
        dims, proven = declared.type.tensor_type.shape.dim, found.type.tensor_type.shape.dim
        if len(dims) != len(proven):
            continue
        for index, (dim, static) in enumerate(zip(dims, proven, strict=True)):
            if dim.HasField("dim_value"):
                continue
            if static.HasField("dim_value"):
                dim.dim_value = static.dim_value
            elif index == 0 and batch is not None:
                dim.dim_param = batch
