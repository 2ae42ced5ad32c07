"""Module outputs of a ``torch.export`` program (``.pt2``), whose graph has no submodule calls to hook.

``torch.export`` records, in each node's ``nn_module_stack`` metadata, the module calls it was traced from (one key
per call: a module called twice has two keys, the second ending in ``@1``). A call's output is the last node of the
call that is used outside it; a :class:`torch.fx.Interpreter` runs the graph once and keeps a copy of those nodes'
values as they are computed (later in-place ops such as ``relu_`` must not change them), and returns the model's
outputs from the same run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from ..errors import ExportError, summarize_error
from .recording import LocalizationUnavailableError, ModuleRecording, Recorder

__all__ = ["GraphRecorder", "has_module_stacks"]

_COMPUTING = ("call_function", "call_method", "call_module")


def _stack(node: fx.Node) -> dict[str, tuple[str, Any]]:
    stack = node.meta.get("nn_module_stack")
    return stack if isinstance(stack, dict) else {}


def has_module_stacks(model: fx.GraphModule) -> bool:
    """Whether the graph's nodes carry ``nn_module_stack`` metadata naming modules other than the root."""
    return any(path for node in model.graph.nodes for path, _ in _stack(node).values() if isinstance(path, str))


class GraphRecorder:
    """Records the module outputs of a graph module with ``nn_module_stack`` metadata (see the module docstring).

    Raises:
        LocalizationUnavailableError: no node names a module.
    """

    def __init__(self, model: fx.GraphModule) -> None:
        if not has_module_stacks(model):
            raise LocalizationUnavailableError(
                "the torch.export program carries no nn_module_stack metadata naming its modules"
            )
        self.model = model
        nodes = [node for node in model.graph.nodes if node.op in _COMPUTING and node.target != "_guards_fn"]
        members: dict[str, set[fx.Node]] = {}
        path_of: dict[str, str] = {}
        types: dict[str, str] = {}
        for node in nodes:
            for key, (path, kind) in _stack(node).items():
                if isinstance(path, str) and path:
                    members.setdefault(key, set()).add(node)
                    path_of[key] = path
                    types[path] = str(kind)
        self.calls: dict[str, int] = {}
        for path in path_of.values():
            self.calls[path] = self.calls.get(path, 0) + 1
        self.names = set(self.calls)
        self.unrecorded: dict[str, tuple[str, str]] = {}
        self.values: dict[str, fx.Node] = {}
        position = {node: index for index, node in enumerate(model.graph.nodes)}
        for key, inside in members.items():
            path = path_of[key]
            if self.calls[path] != 1:
                continue
            exits = [
                node
                for node in sorted(inside, key=position.__getitem__)
                if any(user not in inside for user in node.users)
            ]
            if not exits:
                self.unrecorded[path] = ("no-nodes", "no value of its own leaves its nodes in the torch.export graph")
            elif len(exits) > 1:
                self.unrecorded[path] = ("not-one-tensor", f"returns {len(exits)} values, not one tensor")
            else:
                self.values[path] = exits[-1]
        self.order = sorted(self.values, key=lambda name: (position[self.values[name]], -name.count("."), name))
        self.fed_by = self._fed_by(members, path_of, position)
        state = [name for name, _ in model.named_parameters()] + [name for name, _ in model.named_buffers()]
        self.stateful = {name for name in self.names if any(s.rpartition(".")[0] == name for s in state)}
        self.leaves = {name for name in self.names if not any(other.startswith(name + ".") for other in self.names)}

    def bind(self, model: nn.Module) -> Recorder:
        """A recorder for a copy of the graph module (its nodes are new objects)."""
        if not isinstance(model, fx.GraphModule):
            raise TypeError(f"expected a torch.fx.GraphModule, got {type(model).__name__}")
        return GraphRecorder(model)

    def _fed_by(
        self, members: dict[str, set[fx.Node]], path_of: dict[str, str], position: dict[fx.Node, int]
    ) -> dict[str, str]:
        producer: dict[fx.Node, str] = {}
        for name in sorted(self.values, key=lambda n: -n.count(".")):
            producer[self.values[name]] = name
        fed_by = {}
        for key, inside in members.items():
            path = path_of[key]
            if path not in self.values:
                continue
            for node in sorted(inside, key=position.__getitem__):
                outside = [arg for arg in node.all_input_nodes if arg not in inside and arg.op != "get_attr"]
                if outside:
                    if outside[0] in producer:
                        fed_by[path] = producer[outside[0]]
                    break
        return fed_by

    def run(self, tensors: tuple[torch.Tensor, ...]) -> tuple[Any, ModuleRecording]:
        wanted: dict[fx.Node, list[str]] = {}
        for name, node in self.values.items():
            wanted.setdefault(node, []).append(name)  # a Sequential returns its last child's value
        kept: dict[str, torch.Tensor] = {}

        class _Keeping(fx.Interpreter):
            def run_node(self, node: fx.Node) -> Any:
                result = super().run_node(node)
                if node in wanted and isinstance(result, torch.Tensor):
                    copy = result.detach().clone()
                    kept.update((name, copy) for name in wanted[node])
                return result

        try:
            with torch.no_grad():
                result = _Keeping(self.model).run(*tensors)
        except Exception as error:
            raise ExportError(f"the torch.export MODEL failed to run: {summarize_error(error)}") from error
        recording = ModuleRecording(
            "torch.export graph",
            names=set(self.names),
            stateful=set(self.stateful),
            leaves=set(self.leaves),
            calls=dict(self.calls),
            order=[name for name in self.order if name in kept] + [n for n in self.calls if n not in kept],
            outputs={name: kept[name].cpu().numpy() for name in self.order if name in kept},
            fed_by=dict(self.fed_by),
            unrecorded=dict(self.unrecorded),
        )
        for name in self.values:
            if name not in kept:
                recording.unrecorded[name] = ("not-one-tensor", "its output node did not produce one tensor")
        return result, recording
