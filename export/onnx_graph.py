"""ONNX graph work after either torch exporter: the ``holocron`` domain, fallback functions, stable names, checks.

:func:`finalize_onnx_model` makes an exporter's output self-contained:

* a model with ``holocron`` nodes declares ``opset_import holocron 1`` and carries, as model-local functions, the
  standard-ONNX fallback body of each holocron op it uses (only those), so onnxruntime without holocron's kernels
  inlines them and onnxruntime with the kernels runs the kernels;
* with ``custom_ops=False`` those functions are inlined, leaving standard ONNX only (no ``holocron`` node, opset or
  function), for runtimes that reject unknown domains;
* graph inputs and outputs get stable names (:func:`io_names`), whichever exporter ran;
* the result passes ``onnx.checker.check_model(full_check=True)``.

Every walk over the graph (:func:`iter_graphs`) includes the subgraphs that nodes hold (``If``/``Loop``/``Scan``
bodies).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from types import ModuleType

import onnx
import onnx.inliner

from holocron.ops.contract import DOMAIN as HOLOCRON_DOMAIN
from holocron.ops.contract import DOMAIN_VERSION as HOLOCRON_DOMAIN_VERSION
from holocron.ops.contract import OPS

from .errors import ExportError, summarize_error

__all__ = [
    "HOLOCRON_DOMAIN",
    "HOLOCRON_DOMAIN_VERSION",
    "check_onnx_model",
    "ensure_schemas_registered",
    "export_ops",
    "finalize_onnx_model",
    "holocron_nodes",
    "io_names",
    "iter_graphs",
    "onnx_opset_of",
    "rename_graph_io",
]


def iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and, recursively, every subgraph held in a node attribute."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from iter_graphs(sub)


def holocron_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The ``holocron``-domain nodes of the main graph and its subgraphs (not those inside functions)."""
    return [node for graph in iter_graphs(model.graph) for node in graph.node if node.domain == HOLOCRON_DOMAIN]


def onnx_opset_of(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain the model imports.

    Raises:
        ExportError: the model imports no default ONNX opset.
    """
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise ExportError("the exported model imports no default ONNX opset")


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


def io_names(prefix: str, count: int) -> list[str]:
    """``[prefix]`` for one tensor, ``[prefix_0, prefix_1, ...]`` for several."""
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


def _all_value_names(graph: onnx.GraphProto) -> set[str]:
    names: set[str] = set()
    for g in iter_graphs(graph):
        names.update(v.name for v in itertools.chain(g.input, g.output, g.value_info))
        names.update(t.name for t in g.initializer)
        for node in g.node:
            names.update(node.input)
            names.update(node.output)
    names.discard("")
    return names


def _apply_renames(graph: onnx.GraphProto, renames: dict[str, str]) -> None:
    for g in iter_graphs(graph):
        for value in itertools.chain(g.input, g.output, g.value_info, g.initializer):
            value.name = renames.get(value.name, value.name)
        for node in g.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
            node.output[:] = [renames.get(name, name) for name in node.output]


def rename_graph_io(model: onnx.ModelProto) -> None:
    """Rename the graph's (non-initializer) inputs and its outputs in place to the stable names of :func:`io_names`.

    The two torch exporters name them differently (``x`` / ``input.1``, ``add_3`` / ``17``); exported models get
    ``input``/``output`` (one tensor) or ``input_0, input_1, ...``/``output_0, ...`` (several), so the names callers
    feed and read do not depend on the exporter. A value that already carries one of the new names is renamed out of
    the way first. One value cannot carry two names, so an output that is also a graph input, an initializer, or an
    earlier output (a tensor returned twice) gets an ``Identity`` node producing its own name.
    """
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializer_names]
    outputs = [v.name for v in graph.output]
    input_names = io_names("input", len(inputs))
    output_names = io_names("output", len(outputs))
    wanted = dict(zip(inputs, input_names, strict=True))
    copies: list[tuple[int, str]] = []  # (output position, value it copies)
    for position, (name, new) in enumerate(zip(outputs, output_names, strict=True)):
        if name in wanted or name in initializer_names:
            copies.append((position, name))
        else:
            wanted[name] = new
    taken = _all_value_names(graph)
    renames: dict[str, str] = {}
    targets = set(wanted.values()) | {output_names[position] for position, _ in copies}
    for new in targets:
        if new in taken and new not in wanted:
            # Some other value already has the name we want: move it aside.
            fresh = next(f"{new}__{i}" for i in itertools.count() if f"{new}__{i}" not in taken)
            renames[new] = fresh
            taken.add(fresh)
    renames.update({old: new for old, new in wanted.items() if old != new})
    _apply_renames(graph, renames)
    for position, source in copies:
        value = renames.get(source, source)
        new = output_names[position]
        graph.node.append(onnx.helper.make_node("Identity", [value], [new], name=f"copy_to_{new}"))
        graph.output[position].name = new


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
    check_onnx_model(model)
    return model
