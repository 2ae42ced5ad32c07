"""holocron: PyTorch building blocks that deploy (TorchScript, ONNX, onnxruntime).

``holocron.export`` and ``holocron.runtime`` live in the repository's top-level ``export/`` and ``runtime/`` folders
and are mapped into the package when it is installed. Python started from the repository root imports this source
folder, which lacks them; when a (non-editable) installed copy of holocron is found further down ``sys.path``, its
folder is searched first, so the installed package wins. Without one, importing either subpackage fails with a message
saying what happened and what to do.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__version__ = "0.1.0"

#: Subpackages that an install maps in from the repository's top-level folders.
_MAPPED_SUBPACKAGES = ("export", "runtime")


class _MissingMappedSubpackage(importlib.abc.MetaPathFinder):
    """Last-resort finder: explains why ``holocron.export`` / ``holocron.runtime`` cannot be imported."""

    def __init__(self, source: str) -> None:
        self.source = source

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in {f"{__name__}.{name}" for name in _MAPPED_SUBPACKAGES}:
            return None
        raise ModuleNotFoundError(
            f"{fullname} cannot be imported: holocron was imported from its source folder {self.source}, which does "
            f"not hold {fullname} (it lives in the repository's top-level folder and is mapped in at install), and no "
            "installed copy of holocron was found. Install it with `pip install -e .` (editable, works from the "
            "repository root) or `pip install .` and run Python from another directory.",
            name=fullname,
        )


def _use_installed_subpackages() -> None:
    """Search an installed copy of holocron first when this is the source folder without the mapped subpackages."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isdir(os.path.join(here, _MAPPED_SUBPACKAGES[-1])):
        return  # an installed package (or a source tree that holds the subpackages)
    if importlib.util.find_spec(f"{__name__}.{_MAPPED_SUBPACKAGES[-1]}") is not None:
        return  # an editable install's import hook maps them
    for entry in sys.path:
        candidate = os.path.join(os.path.abspath(entry or os.curdir), __name__)
        if os.path.realpath(candidate) != os.path.realpath(here) and all(
            os.path.isfile(os.path.join(candidate, name, "__init__.py")) for name in _MAPPED_SUBPACKAGES
        ):
            __path__.insert(0, candidate)
            return
    if not any(isinstance(finder, _MissingMappedSubpackage) for finder in sys.meta_path):
        sys.meta_path.append(_MissingMappedSubpackage(here))


_use_installed_subpackages()

# Upstream holocron's sub-packages (models, trainer, ...) when it is installed beside this package (see _upstream).
from holocron import _upstream  # noqa: E402

_upstream.extend_path(__path__)
