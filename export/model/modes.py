"""Train/eval mode of a model: exported graphs are inference graphs, so models are exported and compared in eval
mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode", "mode_is_fixed"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Switch ``model`` (and its submodules) to eval mode, restoring the caller's mode on exit.

    In eval mode BatchNorm uses running statistics, dropout and DropBlock are identities. The module of a
    ``torch.export`` archive has its mode fixed when it was exported (its ``eval()`` raises ``NotImplementedError``);
    it is used as it is.
    """
    if mode_is_fixed(model):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def mode_is_fixed(model: nn.Module) -> bool:
    """Whether ``model``'s train/eval mode cannot be changed (the module of a ``torch.export`` archive)."""
    try:
        model.train(model.training)
    except NotImplementedError:
        return True
    return False
