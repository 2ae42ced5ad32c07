"""Every module's eager output, recorded in the run that also gives the model's outputs (one run per precision).

What a module is depends on how the MODEL was stored, so each kind has its recorder:

* a live module (a pickle, or a module given to :func:`~holocron.export.parity.api.verify`): forward hooks
  (:class:`HookRecorder`);
* a TorchScript archive: hooks cannot be registered on a ``ScriptModule``, so the scripted ``forward`` graph is inlined,
  each node keeps the module hierarchy of the call it came from, and the value each module returns is exposed as an
  extra output of a copy of that graph, which TorchScript's interpreter runs
  (:mod:`~holocron.export.parity.script_recording`);
* a ``torch.export`` program (``.pt2``): its nodes carry ``nn_module_stack`` metadata, from which each module's output
  node is found; a :class:`torch.fx.Interpreter` runs the graph and keeps those nodes' values
  (:mod:`~holocron.export.parity.graph_recording`).

Each produces a :class:`ModuleRecording`; a model that cannot be recorded at all raises
:class:`LocalizationUnavailableError` before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..errors import ExportError

__all__ = [
    "HookRecorder",
    "LocalizationUnavailableError",
    "ModuleRecording",
    "Recorder",
    "describe_output",
    "module_structure",
]


class LocalizationUnavailableError(ValueError):
    """The model (or the exported model) offers no way to tell its modules' outputs apart; the message says why.

    Args:
        message: what cannot be localized and why (naming the Python argument ``localize``).
        cli_message: the same for the command line, naming ``--localize``.
    """

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message


@dataclass
class ModuleRecording:
    """The eager side of a localization.

    Args:
        method: how the outputs were recorded (``forward hooks``, ``TorchScript graph``, ``torch.export graph``).
        names: qualified name of every module of the model (the root excluded).
        stateful: the modules with parameters or buffers of their own.
        leaves: the modules without child modules.
        calls: how many times each module was called (at least once).
        order: the called modules, in the order their calls returned.
        outputs: the first output of each module called once whose output is one tensor (a copy).
        fed_by: module -> the module whose output it took as its first input.
        unrecorded: module -> (reason, detail): why its output has no eager value (``not-one-tensor``: a tuple
            output; ``no-nodes``: no computation of its own, such as an identity; ``not-recorded``: inside control
            flow, a scripted submodule of a live module...).
    """

    method: str
    names: set[str] = field(default_factory=set)
    stateful: set[str] = field(default_factory=set)
    leaves: set[str] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    fed_by: dict[str, str] = field(default_factory=dict)
    unrecorded: dict[str, tuple[str, str]] = field(default_factory=dict)


class Recorder(Protocol):
    """Runs the model once, returning its outputs (as the model returns them) and the recording."""

    def run(self, tensors: tuple[torch.Tensor, ...]) -> tuple[Any, ModuleRecording]: ...

    def bind(self, model: nn.Module) -> Recorder:
        """The recorder for a copy of the model (the float64 reference)."""
        ...


def module_structure(model: nn.Module, recording: ModuleRecording) -> None:
    """Fill ``names``, ``stateful`` and ``leaves`` from ``model.named_modules()``."""
    for name, module in model.named_modules():
        if not name:
            continue
        recording.names.add(name)
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            recording.stateful.add(name)
        if not any(True for _ in module.children()):
            recording.leaves.add(name)


def describe_output(value: Any) -> str:
    """Why an output is not one tensor, in words (``returns a tuple``)."""
    return f"returns a {type(value).__name__}, not one tensor"


class HookRecorder:
    """Forward hooks on a live module: each module's output is cloned as it returns (later in-place ops must not
    change it), with the order of the calls and which module produced the tensor each module consumed first."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def bind(self, model: nn.Module) -> Recorder:
        return HookRecorder(model)

    def run(self, tensors: tuple[torch.Tensor, ...]) -> tuple[Any, ModuleRecording]:
        recording = ModuleRecording("forward hooks")
        module_structure(self.model, recording)
        producer: dict[int, str] = {}
        alive: list[torch.Tensor] = []  # keeps the ids in ``producer`` valid during the run
        handles = []
        for name, module in self.model.named_modules():
            if not name:
                continue
            try:
                handles.append(module.register_forward_hook(self._hook(name, recording, producer, alive)))
            except Exception:  # a scripted submodule of a live module: it runs as compiled code
                recording.unrecorded[name] = (
                    "not-recorded",
                    "a scripted submodule of a live module (no forward hooks)",
                )
        try:
            with torch.no_grad():
                result = self.model(*tensors)
        except ExportError:
            raise
        finally:
            for handle in handles:
                handle.remove()
            alive.clear()
        return result, recording

    @staticmethod
    def _hook(
        name: str, recording: ModuleRecording, producer: dict[int, str], alive: list[torch.Tensor]
    ) -> Callable[..., None]:
        def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            recording.calls[name] = recording.calls.get(name, 0) + 1
            if recording.calls[name] == 1:
                recording.order.append(name)
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if first is not None and id(first) in producer and name not in recording.fed_by:
                recording.fed_by[name] = producer[id(first)]
            if isinstance(output, torch.Tensor):
                if recording.calls[name] == 1:
                    recording.outputs[name] = output.detach().cpu().clone().numpy()
                producer[id(output)] = name
                alive.append(output)
            elif recording.calls[name] == 1:
                recording.unrecorded[name] = ("not-one-tensor", describe_output(output))

        return record
