"""Walking and naming the graph of an exported model (its ``holocron`` nodes included).

Every walk over the graph (:func:`iter_graphs`) includes the subgraphs that nodes hold (``If``/``Loop``/``Scan``
bodies). Graph inputs and outputs get stable names (:func:`io_names`, :func:`rename_graph_io`), whichever exporter
ran.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import onnx
import onnx.inliner

from holocron.contract import DOMAIN as HOLOCRON_DOMAIN
from holocron.contract import DOMAIN_VERSION as HOLOCRON_DOMAIN_VERSION

from ..errors import ExportError

__all__ = [
    "HOLOCRON_DOMAIN",
    "HOLOCRON_DOMAIN_VERSION",
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
