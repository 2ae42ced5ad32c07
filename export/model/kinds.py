"""What kind of file a MODEL or an ARTIFACT is, read from its contents (not its suffix) without loading it.

======================  =========================================================  ===============================
model kind              recognized by                                              loaded with
======================  =========================================================  ===============================
``torchscript``         zip archive with ``constants.pkl`` and a ``code/`` folder  ``torch.jit.load``
``torch_export``        zip archive with ``archive_format`` / ``models/*.json``    ``torch.export.load(...).module()``
``pickle``              ``torch.save`` zip (``data.pkl`` only) or a raw pickle     ``torch.load(weights_only=False)``
======================  =========================================================  ===============================

An ARTIFACT (what ``holocron-verify`` checks) is a TorchScript archive when it is a zip file, else an ONNX model.
Standard library only: the command lines read the kind once, before any heavy import, and pass it on.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Literal

from ..errors import ModelLoadError, summarize_error

__all__ = ["ArtifactKind", "ModelKind", "detect_artifact_kind", "detect_model_kind", "static_batch_inputs"]

ModelKind = Literal["torchscript", "torch_export", "pickle"]


#: First byte of a pickle stream of protocol 2 or later (``torch.save`` with the legacy, non-zip format).
_PICKLE_PROTO = 0x80


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


def static_batch_inputs(path: str | os.PathLike[str]) -> list[str] | None:
    """Names of the user inputs of a ``torch.export`` archive whose dimension 0 was exported as a fixed size.

    Reads the archive's serialized graph (JSON) without torch.

    Returns:
        The input names (empty when every batch dimension is symbolic), or None when the archive's layout is not
        understood.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.split("/", 1)[-1].startswith("models/") and n.endswith(".json")]
            if len(names) != 1:
                return None
            program = json.loads(archive.read(names[0]))
        graph = program["graph_module"]["graph"]
        values = graph["tensor_values"]
        fixed = []
        for spec in program["graph_module"]["signature"]["input_specs"]:
            if "user_input" not in spec:
                continue
            argument = spec["user_input"]["arg"]
            if "as_tensor" not in argument:
                continue
            name = argument["as_tensor"]["name"]
            sizes = values[name]["sizes"]
            if sizes and "as_int" in sizes[0]:
                fixed.append(name)
        return fixed
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None


ArtifactKind = Literal["torchscript", "onnx"]


def detect_artifact_kind(path: str | os.PathLike[str]) -> ArtifactKind:
    """``torchscript`` for a zip file (``torch.jit.save``), ``onnx`` for anything else (read as an ONNX model)."""
    file = Path(path)
    return "torchscript" if file.is_file() and zipfile.is_zipfile(file) else "onnx"
