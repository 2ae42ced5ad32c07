"""Localization: every module's eager output against the ONNX value that the exporter made for it.

Each module's output is recorded in the eager runs (float32 and the float64 copy) by the recorder for the model's kind
(:mod:`~holocron.export.parity.recording`); the matching ONNX value is found from the exporter's scope metadata and
exposed as an extra output of an in-memory copy of the model, and each module passes or fails by the same criterion
as the outputs (:class:`~holocron.export.parity.criteria.Judge`). Every other module called in the run is listed
with the reason it was not compared (:class:`~holocron.export.parity.criteria.UnlocalizedModule`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import onnx
from torch import nn

from ..errors import ExportError, summarize_error
from .criteria import Judge, ModuleComparison, UnlocalizedModule
from .eager import make_recorder
from .recording import LocalizationUnavailableError, ModuleRecording, Recorder
from .session import open_session

__all__ = [
    "Localize",
    "Match",
    "has_module_scopes",
    "localization_unavailable",
    "localize_mode",
    "localize_modules",
    "match_modules",
    "prepare_localization",
]

#: Node metadata in which the dynamo exporter records the module scopes of a node (``['', 'stages', 'stages.0',
#: ..., op]``: the root, the qualified names of the enclosing modules, the node's own name).
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"


_REPEATED_CALL = re.compile(r"_\d+$")


def _node_scopes(node: onnx.NodeProto, module_names: set[str]) -> list[str]:
    """Qualified names of the modules whose forward emitted ``node``, outermost first.

    The dynamo exporter records them in the node's metadata; the TorchScript exporter names a node after its scope
    path, such as ``/stages/stages.0/spatial/Lambda``, where the child of a container appears as ``stages.0`` (the
    container's segment, a dot and the child's name).
    """
    for prop in node.metadata_props:
        if prop.key == _NAME_SCOPES:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return []
            return [scope for scope in scopes[1:-1] if isinstance(scope, str) and scope in module_names]
    if not node.name.startswith("/"):
        return []
    path: list[str] = []
    previous = ""
    found = []
    for segment in node.name.split("/")[1:-1]:
        child = segment[len(previous) + 1 :] if previous and segment.startswith(previous + ".") else segment
        path.append(child)
        previous = segment
        name = ".".join(path)
        if name in module_names:
            found.append(name)
    return found


def _module_values(graph: onnx.GraphProto, module_names: set[str]) -> dict[str, str]:
    """For each module with nodes of its own in ``graph``: the value its forward returns.

    That is the last value (in graph order) produced inside the module's scope and used outside it (by a node of
    another scope, or as a graph output).
    """
    nodes = list(graph.node)
    members: dict[str, set[int]] = {}
    for index, node in enumerate(nodes):
        for scope in _node_scopes(node, module_names):
            members.setdefault(scope, set()).add(index)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    graph_outputs = {value.name for value in graph.output}
    values = {}
    for module, indices in members.items():
        exits = [
            value
            for index in sorted(indices)
            for value in nodes[index].output
            if value and (value in graph_outputs or any(c not in indices for c in consumers.get(value, ())))
        ]
        if exits:
            values[module] = exits[-1]
    return values


#: ``localize``: False, True (strict: a model or artifact that cannot be localized is an error), or ``"best-effort"``
#: (it is verified without module comparisons, and the report says why).
Localize = bool | Literal["best-effort"]


def localize_mode(localize: object) -> Literal["strict", "best-effort"] | None:
    """``localize`` checked: None (off), ``strict`` (True) or ``best-effort``.

    Raises:
        ValueError: any other value.
    """
    if localize is False or localize is None:
        return None
    if localize is True:
        return "strict"
    if localize == "best-effort":
        return "best-effort"
    raise ValueError(f"localize must be True, False or 'best-effort', got {localize!r}")


def localization_unavailable(mode: str, why: str) -> str:
    """The report's note for best-effort; for strict, raise the error naming both spellings of the option."""
    if mode == "strict":
        raise LocalizationUnavailableError(
            f"localize=True cannot localize: {why}; pass localize='best-effort' to verify without module comparisons",
            cli_message=f"--localize cannot localize: {why}; use --localize=best-effort to verify without module "
            "comparisons",
        )
    return why


def prepare_localization(mode: str | None, model: nn.Module, proto: onnx.ModelProto) -> tuple[Recorder | None, str]:
    """The recorder for ``model`` (None without localization) and, when it cannot be localized, the note why."""
    if mode is None:
        return None, ""
    if not has_module_scopes(proto):
        return None, localization_unavailable(
            mode, "the ONNX model names no module scopes (node names or metadata) to match"
        )
    try:
        return make_recorder(model), ""
    except LocalizationUnavailableError as error:
        return None, localization_unavailable(mode, str(error))


def has_module_scopes(proto: onnx.ModelProto) -> bool:
    """Whether any node of ``proto`` names the module it came from (scope metadata or a ``/scope/...`` name)."""
    return any(
        node.name.startswith("/") or any(prop.key == _NAME_SCOPES for prop in node.metadata_props)
        for node in proto.graph.node
    )


@dataclass(frozen=True)
class Match:
    """The ONNX value found for a module, and how (see :class:`~holocron.export.parity.criteria.ModuleComparison`)."""

    value: str
    match: str = "module-output"
    fused_modules: tuple[str, ...] = ()


def match_modules(
    recording: ModuleRecording, proto: onnx.ModelProto
) -> tuple[dict[str, Match], dict[str, UnlocalizedModule]]:
    """Module name -> ONNX value for the modules called once whose output can be found in ``proto``; and every other
    called module with the reason it is not compared.

    The TorchScript exporter fuses a BatchNorm into the preceding convolution and names the fused node after the
    convolution: a module with state but no nodes of its own, fed by a leaf module, was folded into that leaf, whose
    value is then the folded module's output and is attributed to it. The dynamo exporter's rewriter labels a fused
    node with the later module's scope instead: a leaf with state but no nodes of its own, feeding a module that has
    a value, was folded into it. Either way the compared value says which modules it includes (``fused``).
    """
    values = _module_values(proto.graph, recording.names)
    once = {name for name, count in recording.calls.items() if count == 1}
    dynamo = any(prop.key == _NAME_SCOPES for node in proto.graph.node for prop in node.metadata_props)
    fused: dict[str, list[str]] = {}
    fused_into: dict[str, str] = {}
    for name in recording.order:
        source = recording.fed_by.get(name)
        if (
            not dynamo
            and source is not None
            and source in recording.leaves
            and name not in values
            and name in once
            and source in once
            and source in values
            and name in recording.stateful
            and not name.startswith(source + ".")
        ):
            values[name] = values.pop(source)
            fused.setdefault(name, []).append(source)
            fused_into[source] = name
    for name in recording.order:
        target = next((t for t in recording.order if recording.fed_by.get(t) == name), None)
        if (
            name in once
            and name not in values
            and name not in fused_into
            and name in recording.stateful
            and name in recording.leaves
            and target is not None
            and target in values
            and target in once
            and not target.startswith(name + ".")
        ):
            fused.setdefault(target, []).append(name)
            fused_into[name] = target
    scoped = has_module_scopes(proto)
    matches: dict[str, Match] = {}
    skipped: dict[str, UnlocalizedModule] = {}
    for name in recording.order:
        calls = recording.calls.get(name, 0)

        def skip(reason: str, detail: str, into: str | None = None) -> None:
            skipped[name] = UnlocalizedModule(name, reason, detail, calls, into)  # noqa: B023

        output = recording.outputs.get(name)
        if calls > 1:
            skip("called-repeatedly", f"called {calls} times")
        elif name in fused_into:
            skip("fused", f"fused into {fused_into[name]!r} by the exporter", fused_into[name])
        elif name in recording.unrecorded:
            skip(*recording.unrecorded[name])
        elif output is None:
            skip("not-recorded", f"its output was not recorded ({recording.method})")
        elif not np.issubdtype(output.dtype, np.floating):
            skip("not-floating", f"its output is {output.dtype}, not floating point")
        elif name not in values:
            skip(
                "no-onnx-nodes",
                "no nodes of its own in the ONNX graph" if scoped else "the ONNX model names no module scopes",
            )
        else:
            parts = tuple(fused.get(name, ()))
            matches[name] = Match(values[name], "fused" if parts else "module-output", parts)
    return matches, skipped


def localize_modules(
    judge: Judge,
    proto: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    recording: ModuleRecording,
    recording64: ModuleRecording | None,
    use_kernels: bool | None,
    providers: Sequence[str] | None,
) -> tuple[tuple[ModuleComparison, ...], tuple[UnlocalizedModule, ...]]:
    """Compare every matched module's output with its ONNX value, exposed as an extra output of a copy of ``proto``."""
    matches, skipped = match_modules(recording, proto)
    comparisons: dict[str, ModuleComparison] = {}
    if matches:
        probe = onnx.ModelProto()
        probe.CopyFrom(proto)
        present = {value.name for value in probe.graph.output}
        for name, found in matches.items():
            if found.value not in present:
                elem_type = onnx.helper.np_dtype_to_tensor_dtype(recording.outputs[name].dtype)
                probe.graph.output.append(onnx.helper.make_tensor_value_info(found.value, elem_type, None))
                present.add(found.value)
        session, _ = open_session(probe, use_kernels, providers)
        names = sorted({found.value for found in matches.values()})
        try:
            results = dict(zip(names, session.run(names, feeds), strict=True))
        except Exception as error:
            raise ExportError(f"onnxruntime failed to run the localization copy: {summarize_error(error)}") from error
        for name, found in matches.items():
            eager = recording.outputs[name]
            exported = np.asarray(results[found.value])
            reference = recording64.outputs.get(name) if recording64 is not None else None
            if exported.shape != eager.shape or (reference is not None and reference.shape != eager.shape):
                skipped[name] = UnlocalizedModule(
                    name,
                    "shape-mismatch",
                    f"ONNX value {found.value!r} has shape {exported.shape}, the module's output {eager.shape}",
                )
                continue
            comparison = judge.module(name, found.value, eager, exported, reference)
            comparisons[name] = replace(comparison, match=found.match, fused_modules=found.fused_modules)
    order = {name: index for index, name in enumerate(recording.order)}
    return (
        tuple(sorted(comparisons.values(), key=lambda c: order[c.module])),
        tuple(sorted(skipped.values(), key=lambda u: order[u.module])),
    )
