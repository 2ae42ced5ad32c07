"""Post-export processing shared by both exporters: the ``holocron`` domain, fallback functions, inlining, checks.

After either torch exporter has produced a model, this module makes it self-contained:

* a model with ``holocron`` nodes declares ``opset_import holocron 1`` and carries, as model-local functions, the
  standard-ONNX fallback body of each holocron op it uses (only those), so onnxruntime without holocron's kernels
  inlines them and onnxruntime with the kernels runs the kernels;
* with ``custom_ops=False`` those functions are inlined, leaving standard ONNX only (no ``holocron`` node, opset or
  function), for runtimes that reject unknown domains;
* the result passes ``onnx.checker.check_model(full_check=True)``.
"""

from __future__ import annotations

import onnx
import onnx.inliner

from .custom_op_support import (
    HOLOCRON_DOMAIN,
    HOLOCRON_DOMAIN_VERSION,
    ensure_schemas_registered,
    fallback_functions_for,
    known_op_types,
)
from .errors import ExportError, summarize_error
from .onnx_graph_names import rename_graph_io
from .onnx_graphs import iter_graphs

__all__ = ["check_onnx_model", "finalize_onnx_model", "holocron_nodes", "onnx_opset_of"]


def holocron_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The ``holocron``-domain nodes of the main graph and its subgraphs (not those inside functions)."""
    return [node for graph in iter_graphs(model.graph) for node in graph.node if node.domain == HOLOCRON_DOMAIN]


def onnx_opset_of(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain the model imports."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise ExportError("the exported model imports no default ONNX opset")


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


def _attach_fallbacks(model: onnx.ModelProto, op_types: set[str]) -> None:
    """Replace any holocron-domain local functions by exactly the fallback bodies of ``op_types``."""
    others = [fn for fn in model.functions if fn.domain != HOLOCRON_DOMAIN]
    del model.functions[:]
    model.functions.extend(others)
    if op_types:
        # issue 12: one body per node, specialised to its attributes and static shapes (function overloads).
        fallback_functions_for(sorted(op_types), onnx_opset_of(model))  # raises ExportError if the pieces are missing
        from .ops import attach_fallback_functions

        try:
            attach_fallback_functions(model, onnx_opset_of(model))
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
    """``onnx.checker.check_model(full_check=True)`` with the holocron schemas registered; ExportError on failure."""
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
    unknown = op_types - known_op_types()
    if unknown:
        raise ExportError(f"exported model has holocron op(s) {sorted(unknown)} that the op contract does not define")
    _set_holocron_import(model, present=bool(op_types))
    _attach_fallbacks(model, op_types)
    if not custom_ops and op_types:
        model = _inline_holocron_functions(model)
    rename_graph_io(model)
    check_onnx_model(model)
    return model
