"""An addition to the ``torch.nn`` module of PyTorch to extend the range of neural networks building blocks."""

from . import functional
from . import init as init  # a submodule, importable as ``holocron.nn.init``; not one of the layers of ``__all__``
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all

__all__ = ["functional", *_modules_all]
