"""Module outputs of a TorchScript archive, which takes no forward hooks.

The scripted ``forward`` graph is copied and inlined (``torch._C._jit_pass_inline``): every node then carries the
module hierarchy of the call it was inlined from (``stages(Sequential).0(Block).conv(Conv2d).SELF(Conv2d)`` names
module ``stages.0.conv``). A module's output is the last tensor value produced by its nodes and used outside them;
a clone of it (taken right after it is computed, so that later in-place ops do not change it) becomes an extra
output of the copied graph, which runs as a TorchScript function on the archive's own module object: the numbers
are those of the archive's code, not of a Python re-implementation, and the model's outputs come from the same run.

How often each module is called is read from the un-inlined graphs (``prim::CallMethod`` on a submodule): a module
called more than once, or from inside ``prim::If``/``prim::Loop``, is not recorded, and its reason says so.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import torch
from torch import nn

from ..errors import ExportError, summarize_error
from .recording import LocalizationUnavailableError, ModuleRecording, Recorder, module_structure

__all__ = ["ScriptRecorder"]

#: One ``instance(Type)`` segment of a node's module hierarchy.
_SEGMENT = re.compile(r"(\w+)\(([^()]*)\)")
#: Segments that are not a submodule: a method of the same module, a free function.
_NOT_A_MODULE = ("SELF", "UNKNOWN_INSTANCE")
_SKIPPED_KINDS = ("prim::Constant", "prim::GetAttr")


def _module_path(node: torch._C.Node) -> str:
    path = []
    for instance, _type in _SEGMENT.findall(node.getModuleHierarchy()):
        if instance in _NOT_A_MODULE:
            break
        path.append(instance)
    return ".".join(path)


def _inside(path: str, module: str) -> bool:
    return path == module or path.startswith(module + ".")


def _is_tensor(value: torch._C.Value) -> bool:
    return isinstance(value.type(), torch._C.TensorType)


class ScriptRecorder:
    """Records a ``ScriptModule``'s submodule outputs by running an instrumented copy of its inlined graph.

    Raises:
        LocalizationUnavailableError: the archive's ``forward`` graph cannot be inlined or instrumented.
    """

    def __init__(self, model: torch.jit.ScriptModule) -> None:
        self.model = model
        self.modules: dict[str, Any] = {name: module for name, module in model.named_modules() if name}
        self.calls: dict[str, int] = {}
        self.unrecorded: dict[str, tuple[str, str]] = {}
        try:
            self._count_calls("", model, "forward", 1, "")
            self._instrument()
        except LocalizationUnavailableError:
            raise
        except Exception as error:
            raise LocalizationUnavailableError(
                f"the TorchScript graph cannot be instrumented: {summarize_error(error)}"
            ) from error

    def _count_calls(self, path: str, module: Any, method: str, times: int, control: str) -> None:
        """Add each submodule's static call count, recursively; note the calls made under control flow."""
        graph: Any = getattr(module, method).graph
        paths: dict[Any, str] = {next(iter(graph.inputs())): path}
        for node in graph.nodes():
            self._visit(node, paths, times, control)

    def _walk(self, block: Any, paths: dict[Any, str], times: int, control: str) -> None:
        for node in block.nodes():
            self._visit(node, paths, times, control)

    def _visit(self, node: torch._C.Node, paths: dict[Any, str], times: int, control: str) -> None:
        kind = node.kind()
        if kind == "prim::GetAttr":
            owner = node.input()
            if owner in paths:
                name = node.s("name")
                child = f"{paths[owner]}.{name}" if paths[owner] else name
                if child in self.modules:
                    paths[node.output()] = child
        elif kind == "prim::CallMethod":
            target = next(iter(node.inputs()))
            if target in paths:
                path, method = paths[target], node.s("name")
                module = self.modules[path] if path else self.model
                if method == "forward" and path:
                    self.calls[path] = self.calls.get(path, 0) + times
                    if control:
                        self.unrecorded.setdefault(path, ("not-recorded", f"called inside TorchScript {control}"))
                self._count_calls(path, module, method, times, control)
        for block in node.blocks():
            inner = control or ("control flow (prim::Loop)" if kind == "prim::Loop" else "control flow (prim::If)")
            self._walk(block, paths, times, inner)

    def _instrument(self) -> None:
        forward: Any = self.model.forward
        graph: Any = forward.graph.copy()
        torch._C._jit_pass_inline(graph)
        nodes = list(graph.nodes())
        owner = {node: _module_path(node) for node in nodes}
        position = {node: index for index, node in enumerate(nodes)}
        wanted = [name for name, count in self.calls.items() if count == 1 and name not in self.unrecorded]
        exits: dict[str, list[torch._C.Value]] = {}
        for node in nodes:
            if node.kind() in _SKIPPED_KINDS or not owner[node]:
                continue
            for value in node.outputs():
                if not _is_tensor(value):
                    continue
                users = [use.user for use in value.uses()]
                for name in wanted:
                    if not _inside(owner[node], name):
                        continue
                    if any(user.kind() == "prim::Return" or not _inside(_module_path(user), name) for user in users):
                        exits.setdefault(name, []).append(value)
        self.values: dict[str, torch._C.Value] = {}
        for name in wanted:
            module = self.modules[name]
            returns = module.forward.schema.returns
            if len(returns) != 1 or not isinstance(returns[0].type, torch._C.TensorType):
                what = returns[0].type if returns else "nothing"
                self.unrecorded[name] = ("not-one-tensor", f"returns {what}, not one tensor")
            elif name not in exits:
                self.unrecorded[name] = ("no-nodes", "no computation of its own in the TorchScript graph")
            else:
                self.values[name] = exits[name][-1]
        # Modules returning the same value (a Sequential and its last child): inner first, as hooks fire.
        self.order = sorted(self.values, key=lambda name: (position[self.values[name].node()], -name.count("."), name))
        self.fed_by = self._fed_by(nodes, owner)
        self.function = self._function(graph)

    def _fed_by(self, nodes: list[torch._C.Node], owner: dict[torch._C.Node, str]) -> dict[str, str]:
        """Module -> the outermost module whose output is the first tensor its nodes take from outside."""
        producer: dict[torch._C.Value, str] = {}
        for name in sorted(self.values, key=lambda n: -n.count(".")):
            producer[self.values[name]] = name  # outer modules last: they win
        fed_by = {}
        for name in self.values:
            for node in nodes:
                if node.kind() in _SKIPPED_KINDS or not _inside(owner[node], name):
                    continue
                outside = [
                    value
                    for value in node.inputs()
                    if _is_tensor(value) and not _inside(owner.get(value.node(), ""), name)
                ]
                if outside:
                    if outside[0] in producer:
                        fed_by[name] = producer[outside[0]]
                    break
        return fed_by

    def _function(self, graph: Any) -> Any:
        first = next(iter(graph.nodes()))
        none = graph.create("prim::Constant")
        none.insertBefore(first)
        none.output().setType(torch._C.NoneType.get())
        clones = []
        for name in self.order:
            value = self.values[name]
            clone = graph.create("aten::clone", [value, none.output()])
            clone.insertAfter(value.node())
            clone.output().setType(value.type())
            clones.append(clone.output())
        ret = graph.return_node()
        original = next(iter(ret.inputs()))
        pack = graph.create("prim::TupleConstruct", [original, *clones])
        pack.insertBefore(ret)
        pack.output().setType(torch._C.TupleType([value.type() for value in (original, *clones)]))
        ret.replaceInput(0, pack.output())
        graph.lint()
        return torch._C._create_function_from_graph("holocron_recorded_forward", graph)

    def bind(self, model: nn.Module) -> Recorder:
        """The same recorder for a copy of the model (the float64 one): its graph serves any module of its type."""
        if not isinstance(model, torch.jit.ScriptModule) or model._c._type() != self.model._c._type():
            return ScriptRecorder(model)  # type: ignore[arg-type]
        bound = copy.copy(self)
        bound.model = model
        bound.modules = {name: module for name, module in model.named_modules() if name}
        return bound

    def run(self, tensors: tuple[torch.Tensor, ...]) -> tuple[Any, ModuleRecording]:
        recording = ModuleRecording("TorchScript graph")
        module_structure(self.model, recording)
        try:
            with torch.no_grad():
                packed = self.function(self.model._c, *tensors)
        except Exception as error:
            raise ExportError(f"the TorchScript MODEL failed to run: {summarize_error(error)}") from error
        result, recorded = packed[0], packed[1:]
        recording.calls = {name: count for name, count in self.calls.items() if count}
        recording.order = list(self.order) + [name for name in self.calls if name not in self.values]
        recording.outputs = {
            name: tensor.detach().cpu().numpy() for name, tensor in zip(self.order, recorded, strict=True)
        }
        recording.fed_by = dict(self.fed_by)
        recording.unrecorded = dict(self.unrecorded)
        return result, recording
