"""Load the MODEL given to ``holocron-export``: a TorchScript archive, a ``torch.export`` archive, or a pickle.

The kind is read from the file's contents, not its suffix:

======================  =========================================================  ===============================
kind                    recognised by                                              loaded with
======================  =========================================================  ===============================
``torchscript``         zip archive with ``constants.pkl`` and a ``code/`` folder  ``torch.jit.load``
``torch_export``        zip archive with ``archive_format`` / ``models/*.json``    ``torch.export.load(...).module()``
``pickle``              ``torch.save`` zip (``data.pkl`` only) or a raw pickle     ``torch.load(weights_only=False)``
======================  =========================================================  ===============================

Loading a pickle runs arbitrary code from the file, so it is refused unless the caller trusts the file
(``trust_pickle=True``, ``--trust-pickle``).
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .custom_op_support import ensure_torch_ops_loaded
from .errors import ExportError, ModelLoadError, summarize_error

__all__ = ["LoadedModel", "ModelKind", "detect_model_kind", "load_model"]

ModelKind = Literal["torchscript", "torch_export", "pickle"]

#: First byte of a pickle stream of protocol 2 or later (``torch.save`` with the legacy, non-zip format).
_PICKLE_PROTO = 0x80


@dataclass(frozen=True)
class LoadedModel:
    """A model read from disk.

    Args:
        module: the module to export (CPU).
        kind: what the file was.
        path: where it was read from.
        example_inputs: positional example inputs stored in the file (``torch.export`` archives), else None.
    """

    module: nn.Module
    kind: ModelKind
    path: Path
    example_inputs: tuple[torch.Tensor, ...] | None = None


def detect_model_kind(path: str | os.PathLike[str]) -> ModelKind:
    """Tell a TorchScript archive, a ``torch.export`` archive and a pickled object apart from their contents.

    Raises:
        ModelLoadError: the file is missing, not a regular file, empty, or none of the three kinds.
    """
    file = Path(path)
    if not file.exists():
        raise ModelLoadError(f"model file {str(file)!r} does not exist")
    if not file.is_file():
        raise ModelLoadError(f"model path {str(file)!r} is not a regular file")
    if file.stat().st_size == 0:
        raise ModelLoadError(f"model file {str(file)!r} is empty")
    if not zipfile.is_zipfile(file):
        with file.open("rb") as handle:
            first = handle.read(1)
        if first and first[0] == _PICKLE_PROTO:
            return "pickle"
        raise ModelLoadError(
            f"model file {str(file)!r} is not a TorchScript archive, a torch.export archive (.pt2) "
            "or a torch.save pickle (corrupt or unknown format)"
        )
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(f"model file {str(file)!r} is a corrupt zip archive: {summarize_error(error)}") from error
    parts = [name.split("/", 1)[-1] for name in names]
    if "archive_format" in parts or any(p.startswith("models/") and p.endswith(".json") for p in parts):
        return "torch_export"
    if "constants.pkl" in parts and any(p.startswith("code/") for p in parts):
        return "torchscript"
    if "data.pkl" in parts:
        return "pickle"
    raise ModelLoadError(
        f"model file {str(file)!r} is a zip archive but not a TorchScript, torch.export or torch.save archive"
    )


def _require_module(obj: object, file: Path) -> nn.Module:
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict):
        raise ModelLoadError(
            f"model file {str(file)!r} holds a dict (a state_dict?), not a module: the architecture is missing; "
            "save the whole module, a TorchScript archive or a torch.export archive"
        )
    raise ModelLoadError(f"model file {str(file)!r} holds a {type(obj).__name__}, not a torch.nn.Module")


def _reject_plain_data(file: Path) -> None:
    """Name the problem when an untrusted pickle holds plain data (a state_dict), which loads without running code."""
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:
        return  # it holds more than tensors and containers: the caller refuses it as an untrusted pickle
    _require_module(obj, file)


def _load_torch_export(file: Path) -> LoadedModel:
    try:
        program = torch.export.load(file)
        module = program.module()
    except Exception as error:
        raise ModelLoadError(f"cannot load torch.export archive {str(file)!r}: {summarize_error(error)}") from error
    example_inputs = None
    if program.example_inputs is not None:
        args, kwargs = program.example_inputs
        if not kwargs and all(isinstance(arg, torch.Tensor) for arg in args):
            example_inputs = tuple(args)
    return LoadedModel(module, "torch_export", file, example_inputs)


def load_model(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> LoadedModel:
    """Load a model file for export, on CPU.

    Args:
        path: TorchScript archive (``torch.jit.save``), ``torch.export`` archive (``torch.export.save``, ``.pt2``),
            or a whole module pickled with ``torch.save``.
        trust_pickle: allow loading a pickle. Unpickling runs arbitrary code from the file: only for files you
            trust.

    Returns:
        The module and what kind of file it came from.

    Raises:
        ModelLoadError: missing, empty, corrupt or unrecognised file; a pickle without ``trust_pickle``; a file
            that holds something other than a module.
    """
    file = Path(path)
    kind = detect_model_kind(file)
    # Archives and pickles that call torch.ops.holocron.* need the ops registered before loading; a model without
    # holocron ops still loads where they are unavailable (one with them fails below with torch's message).
    with contextlib.suppress(ExportError):
        ensure_torch_ops_loaded()
    if kind == "torch_export":
        return _load_torch_export(file)
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(file), map_location="cpu")
        except Exception as error:
            raise ModelLoadError(f"cannot load TorchScript archive {str(file)!r}: {summarize_error(error)}") from error
        return LoadedModel(module, kind, file)
    if not trust_pickle:
        _reject_plain_data(file)
        raise ModelLoadError(
            f"refusing to load {str(file)!r}: it is a pickle, and loading a pickle runs arbitrary code from the file; "
            "pass trust_pickle=True (--trust-pickle) only if you trust it, or save a TorchScript/torch.export archive"
        )
    try:
        obj = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ModelLoadError(f"cannot unpickle {str(file)!r}: {summarize_error(error)}") from error
    return LoadedModel(_require_module(obj, file), kind, file)
