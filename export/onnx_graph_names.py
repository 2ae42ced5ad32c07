"""Stable graph input and output names for exported ONNX models.

The two torch exporters name graph inputs and outputs differently (``x`` / ``input.1``, ``add_3`` / ``17``). Exported
models get ``input``/``output`` (one tensor) or ``input_0, input_1, ...``/``output_0, ...`` (several), whichever
exporter ran, so the names callers feed and read do not depend on the exporter.
"""

from __future__ import annotations

import itertools

import onnx

from .onnx_graphs import iter_graphs

__all__ = ["io_names", "rename_graph_io"]


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

    A value that already carries one of the new names is renamed out of the way first. An output that is also a
    graph input or appears twice among the outputs keeps its name (one value cannot carry two names).
    """
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializer_names]
    outputs = [v.name for v in graph.output]
    wanted = dict(zip(inputs, io_names("input", len(inputs)), strict=True))
    for name, new in zip(outputs, io_names("output", len(outputs)), strict=True):
        if name not in wanted and outputs.count(name) == 1:
            wanted[name] = new
    taken = _all_value_names(graph)
    renames: dict[str, str] = {}
    for new in wanted.values():
        if new in taken and new not in wanted:
            # Some other value already has the name we want: move it aside.
            fresh = next(f"{new}__{i}" for i in itertools.count() if f"{new}__{i}" not in taken)
            renames[new] = fresh
            taken.add(fresh)
    renames.update({old: new for old, new in wanted.items() if old != new})
    _apply_renames(graph, renames)
