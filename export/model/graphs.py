"""The ops a loaded model's graphs call, checked against an allow-list before any of them runs.

TorchScript archives and ``torch.export`` programs are code by design: their graphs run in ``forward``. Without
``trust_pickle`` / ``--trust-pickle``, :func:`check_script_module` and :func:`check_exported_program` refuse a graph
that calls anything but side-effect-free ops, naming the first op outside the list:

* ops of the ``aten``, ``prim``, ``prims`` and ``holocron`` namespaces, except those that reach outside the process:
  :data:`DENIED_OPS` (``aten::from_file`` maps and writes a file, ``aten::save`` writes one, the print ops write to
  stdout, ``prim::PythonOp`` calls Python);
* in a TorchScript graph (every method of every submodule, calls inlined), no call left that the inlining could not
  see through (``prim::CallMethod``/``prim::CallFunction``: a TorchBind method or an interface);
* in a ``torch.export`` graph (every submodule, so the branches of higher-order ops too), calls to those ops, to the
  higher-order ops in :data:`_HIGHER_ORDER_OPS`, and to Python's arithmetic and comparison functions
  (:mod:`operator`, :mod:`math`, torch's ``sym_*``) only.

``__setstate__`` never gets here: it runs during ``torch.jit.load``, so an archive defining one is refused before
loading (:mod:`~holocron.export.model.archives`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["DENIED_OPS", "UnsafeGraphError", "check_exported_program", "check_script_module"]

_ALLOWED_NAMESPACES = frozenset({"aten", "prim", "prims", "holocron"})
#: Ops of the allowed namespaces that act outside the process (files, stdout) or run Python.
DENIED_OPS = frozenset(
    {"aten::from_file", "aten::save", "aten::_print", "prim::Print", "prim::PythonOp", "prim::CallMethod",
     "prim::CallFunction", "prim::IgnoredPythonOp", "prim::Enter", "prim::Exit"}
)  # fmt: skip
_HIGHER_ORDER_OPS = frozenset(
    {"cond", "while_loop", "map_impl", "scan", "wrap_with_set_grad_enabled", "wrap_with_autocast", "associative_scan"}
)
_PYTHON_FUNCTIONS = frozenset(
    [
        *(getattr(operator, name) for name in (
            "getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "eq", "ne",
            "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert", "lshift", "rshift",
        )),
        *(getattr(math, name) for name in ("ceil", "floor", "trunc", "sqrt")),
        *(getattr(torch, name) for name in (
            "sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_sqrt", "sym_ite", "_assert",
        ) if hasattr(torch, name)),
    ]
)  # fmt: skip


class UnsafeGraphError(Exception):
    """A graph of the model calls an op outside the allow-list.

    Args:
        where: the method or graph (``forward``, ``layer1.forward``, ``graph``).
        op: the op, e.g. ``aten::from_file``.
    """

    def __init__(self, where: str, op: str) -> None:
        super().__init__(f"{where} calls {op}")
        self.where = where
        self.op = op


def _op_allowed(kind: str) -> bool:
    namespace = kind.partition("::")[0]
    return namespace in _ALLOWED_NAMESPACES and kind.partition(".")[0] not in DENIED_OPS


def _nodes(block: Any) -> Iterator[Any]:
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _nodes(inner)


def _script_modules(module: nn.Module) -> Iterable[tuple[str, Any]]:
    for name, sub in module.named_modules():
        if isinstance(sub, torch.jit.ScriptModule):
            yield name, sub._c


def check_script_module(module: nn.Module) -> None:
    """Check every method of every submodule of a loaded TorchScript module (calls inlined).

    Raises:
        UnsafeGraphError: a method calls an op outside the allow-list.
    """
    for prefix, scripted in _script_modules(module):
        for method in scripted._method_names():
            graph = scripted._get_method(method).graph.copy()
            torch._C._jit_pass_inline(graph)
            for node in _nodes(graph):
                if not _op_allowed(node.kind()):
                    raise UnsafeGraphError(f"{prefix}.{method}" if prefix else method, node.kind())


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None) or type(target).__module__
    return f"{module}.{getattr(target, '__qualname__', getattr(target, '__name__', repr(target)))}"


def _call_allowed(target: Any) -> bool:
    if isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return _op_allowed(
            target.name() if isinstance(target, torch._ops.OpOverload) else str(target._qualified_op_name)
        )
    if isinstance(target, torch._ops.HigherOrderOperator):
        return target.name() in _HIGHER_ORDER_OPS
    try:
        return target in _PYTHON_FUNCTIONS
    except TypeError:  # unhashable
        return False


def _op_label(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return target.name()
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher-order op {target.name()}"
    return _target_name(target)


def check_exported_program(program: torch.export.ExportedProgram) -> None:
    """Check every node of a loaded ``torch.export`` program's graph and of its submodules (the branches of
    higher-order ops).

    Raises:
        UnsafeGraphError: a node calls something outside the allow-list, or is a method or module call.
    """
    for prefix, graph_module in program.graph_module.named_modules():
        graph = getattr(graph_module, "graph", None)
        if graph is None:
            continue
        where = f"graph {prefix}" if prefix else "graph"
        for node in graph.nodes:
            if node.op == "call_function" and not _call_allowed(node.target):
                raise UnsafeGraphError(where, _op_label(node.target))
            if node.op in ("call_method", "call_module"):
                raise UnsafeGraphError(where, f"{node.op} {node.target}")
