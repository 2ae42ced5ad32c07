"""Unpickling of modules saved by upstream holocron (the ``pylocron`` distribution).

A whole module saved with ``torch.save(model)`` under upstream holocron names our classes (same qualified names), so
it unpickles into them, but with the instance attributes upstream's classes had. :func:`accepts_upstream_state` gives
every such layer one shared ``__setstate__`` that turns that state into ours; each class only declares, in an
:class:`UpstreamAttributes`, how its attributes differ from those of upstream's releases (0.1.x to 0.3.0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import Tensor, nn

T = TypeVar("T", bound=nn.Module)

__all__ = ["UpstreamAttributes", "accepts_upstream_state"]


@dataclass(frozen=True)
class UpstreamAttributes:
    """How a class's instance state differs from upstream's, applied in this order on unpickling.

    Args:
        renamed: upstream attribute name -> ours (e.g. ``MutualChannelLoss.chi`` of 0.1.x -> ``xi``)
        plain_buffers: tensors (or ``None``) that upstream kept as plain attributes and we keep as buffers; they become
            non-persistent buffers, so the module's ``state_dict`` keys stay those of the pickled module
        none_parameters: parameters we register as ``None`` where upstream registered nothing
        attributes: attributes upstream's state may lack -> function of the module giving their value
        buffers: non-persistent buffers upstream's state lacks -> function of the module giving their value
        dropped: upstream-only attributes, removed once ours are derived
    """

    renamed: Mapping[str, str] = field(default_factory=dict)
    plain_buffers: tuple[str, ...] = ()
    none_parameters: tuple[str, ...] = ()
    attributes: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    buffers: Mapping[str, Callable[[Any], Tensor]] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def _has(module: nn.Module, name: str) -> bool:
    return name in module.__dict__ or name in module._buffers or name in module._parameters or name in module._modules


def _setstate(module: nn.Module, state: dict[str, Any]) -> None:
    """``__setstate__`` of the classes decorated with :func:`accepts_upstream_state`: ours pass unchanged, upstream's
    get the attributes they lack."""
    nn.Module.__setstate__(module, state)
    spec: UpstreamAttributes = type(module)._upstream  # type: ignore[attr-defined]
    for old, new in spec.renamed.items():
        if old in module.__dict__ and not _has(module, new):
            module.__dict__[new] = module.__dict__.pop(old)
    for name in spec.plain_buffers:
        if name in module.__dict__ and name not in module._buffers:
            module.register_buffer(name, module.__dict__.pop(name), persistent=False)
    for name in spec.none_parameters:
        if not _has(module, name):
            module.register_parameter(name, None)
    for name, derive in spec.attributes.items():
        if not _has(module, name):
            setattr(module, name, derive(module))
    for name, derive in spec.buffers.items():
        if not _has(module, name):
            module.register_buffer(name, derive(module), persistent=False)
    for name in spec.dropped:
        module.__dict__.pop(name, None)


def accepts_upstream_state(spec: UpstreamAttributes) -> Callable[[type[T]], type[T]]:
    """Class decorator: instances unpickle from the state of upstream's class of the same name, as ``spec`` says.

    Every decorated class gets the same ``__setstate__`` (subclasses inherit it, and the spec unless they are
    decorated too); the class's bases stay those of upstream's class. It runs on every unpickling (``torch.load``,
    ``pickle``, ``copy.deepcopy``).
    """

    def decorate(cls: type[T]) -> type[T]:
        cls._upstream = spec  # type: ignore[attr-defined]
        cls.__setstate__ = _setstate  # type: ignore[method-assign]
        return cls

    return decorate
