"""Writing one model into a Triton repository: the slot check before any work, then the atomic folder swap."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

import onnx

from ..errors import OutputExistsError
from ..files import MAX_FOLDER_NAME_BYTES, folder_lock, recover_folder, staging_folder, swap_folder_into_place
from .config import TorchScriptModel, config_pbtxt
from .options import BACKENDS, TritonOptions, server_library_path

__all__ = ["check_repository_slot", "write_repository"]

_CONFIG_FILE = "config.pbtxt"


def check_repository_slot(
    repository: str | os.PathLike[str],
    model_name: str,
    *,
    overwrite: bool,
    other_outputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> Path:
    """Check, before any work, that model ``model_name`` may be written into ``repository``.

    Args:
        repository: the model repository folder.
        model_name: the model's folder name.
        overwrite: an existing model of that name may be replaced.
        other_outputs: name -> path of other files the same run writes (the report): none may lie inside the model's
            folder, which the swap replaces.

    Returns:
        The model folder ``repository/model_name``.

    Raises:
        OutputExistsError: the model exists and ``overwrite`` is False.
        ValueError: ``repository`` is not a folder (or a dangling symlink), the model's name is longer than a file
            name may be, its path is not a folder or a symlink, or another output lies inside it.
    """
    repo = Path(repository)
    if repo.is_symlink() and not repo.exists():
        raise ValueError(f"repository {str(repo)!r} is a symlink to a missing path ({os.readlink(repo)!r})")
    if repo.exists() and not repo.is_dir():
        raise ValueError(f"repository {str(repo)!r} exists and is not a folder")
    if len(os.fsencode(model_name)) > MAX_FOLDER_NAME_BYTES:
        raise ValueError(
            f"model name of {len(os.fsencode(model_name))} bytes is too long: file systems limit names to 255 bytes, "
            f"and the hidden staging folder adds {255 - MAX_FOLDER_NAME_BYTES} (at most {MAX_FOLDER_NAME_BYTES})"
        )
    slot = repo / model_name
    for label, other in (other_outputs or {}).items():
        if other is None:
            continue
        resolved, folder = Path(os.path.abspath(other)), Path(os.path.abspath(slot))
        if resolved == folder or folder in resolved.parents:
            raise ValueError(f"{label} {str(other)!r} lies inside the model folder {str(slot)!r}, which is replaced")
    _check_slot_entry(slot, model_name, overwrite=overwrite)
    return slot


def _check_slot_entry(slot: Path, model_name: str, *, overwrite: bool) -> None:
    """Refuse what lies at ``slot``, read with one ``lstat``: another writer may swap the folder meanwhile (between
    its two renames the slot is briefly missing), so two separate questions (exists? is a folder?) could see two
    different moments and call a model folder 'not a folder'."""
    try:
        mode = slot.lstat().st_mode
    except FileNotFoundError:
        return
    if not overwrite:
        what = f"model {model_name!r} already exists in {str(slot.parent)!r}"
        raise OutputExistsError(
            f"{what}; pass overwrite=True to replace it", cli_message=f"{what}; --force replaces it", path=slot
        )
    if not (stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise ValueError(f"{str(slot)!r} exists and is not a model folder; not replaced")


def write_repository(
    model: onnx.ModelProto | TorchScriptModel,
    repository: str | os.PathLike[str],
    options: TritonOptions,
    *,
    library: str | os.PathLike[str] | None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as ``repository/<name>/`` (config, version folder, op library), atomically.

    Other models of the repository are left as they are. With ``overwrite``, an existing model folder is replaced
    as a whole: its other version folders are carried over, a symlink in its place is replaced (never written
    through).

    Args:
        model: the exported model: an ONNX model (``options.backend`` onnxruntime) or a TorchScript archive
            (pytorch).
        repository: the model repository folder (created if missing).
        options: name, version, batching, instances and the server-side library path.
        library: holocron's op library to copy next to the config; None when the model needs none.
        overwrite: replace an existing model of that name.

    Returns:
        The model folder.

    Raises:
        OutputExistsError: the model exists and ``overwrite`` is False.
        ValueError: see :func:`config_pbtxt` and :func:`check_repository_slot`.
    """
    slot = check_repository_slot(repository, options.model_name, overwrite=overwrite)
    library_file = Path(library) if library is not None else None
    config = config_pbtxt(
        model, options, server_library_path(options, library_file.name) if library_file is not None else None
    )
    repo = slot.parent
    repo.mkdir(parents=True, exist_ok=True)
    with folder_lock(repo):
        recover_folder(repo, options.model_name, counts=str.isdigit)
        _check_slot_entry(slot, options.model_name, overwrite=overwrite)  # again: it may have changed meanwhile
        with staging_folder(repo, options.model_name) as staging:
            version_dir = staging / str(options.model_version)
            version_dir.mkdir()
            model_file = version_dir / BACKENDS[options.backend]
            if isinstance(model, TorchScriptModel):
                model_file.write_bytes(model.archive)
            else:
                onnx.save_model(model, model_file)
            (staging / _CONFIG_FILE).write_text(config)
            if library_file is not None:
                shutil.copy2(library_file, staging / library_file.name)
            swap_folder_into_place(staging, slot, keep=str.isdigit)
    return slot
