"""Triton Inference Server model repositories for exported models, with holocron's op library beside the model.

NVIDIA Triton's onnxruntime backend serves ``REPO/NAME/VERSION/model.onnx`` as described by ``REPO/NAME/config.pbtxt``
and registers the custom-op libraries that the config names under ``model_operations`` before it creates the
session. :func:`write_repository` lays out one model of such a repository::

    REPO/
      NAME/
        config.pbtxt
        libholocron_ort.so      (only when the model holds ``holocron`` nodes)
        1/
          model.onnx

The library path written into the config is the one the *server* opens, so it is a path inside the serving
container: ``SERVER_REPOSITORY/NAME/<library file>``, where ``server_repository`` is where the repository is mounted
there: ``/models`` by default, as in Triton's own examples (``docker run -v REPO:/models ... tritonserver
--model-repository=/models``), ``/mnt/models`` under KServe; ``op_library_path`` names any other place.

Triton releases before 25.03 ship an onnxruntime older than 1.21, which refuses the library (it needs API version
21): ``op_library=False`` writes neither the library nor ``model_operations``, and such a server runs the
``holocron`` nodes on the standard-ONNX fallback functions every exported model carries.

The model folder is assembled in a hidden temporary folder inside ``REPO`` and renamed into place, so a server
polling the repository never sees half a model, and other models of the repository are never touched. Replacing a
model never loses a version: writers take an exclusive lock on the ``REPO`` folder itself (``flock``); the new
folder gets the other versions as hard links (copies where the file system has none) while the old folder stays
whole, then two renames swap them. A writer killed between the renames leaves the old folder as
``REPO/.NAME.<random>.old``: the next writer of that model puts it back (or, when the swap had completed, removes
it once every version in it is also in the model folder), and names any leftover it cannot account for.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx

from .errors import OutputExistsError
from .files import MAX_FOLDER_NAME_BYTES, folder_lock, recover_folder, staging_folder, swap_folder_into_place

__all__ = [
    "DEFAULT_SERVER_REPOSITORY",
    "InstanceKind",
    "TritonOptions",
    "check_repository_slot",
    "config_pbtxt",
    "server_library_path",
    "write_repository",
]

InstanceKind = Literal["auto", "gpu", "cpu"]
_KINDS: dict[str, str] = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}

#: Where the repository is mounted inside the serving container in Triton's own examples.
DEFAULT_SERVER_REPOSITORY = "/models"
#: Oldest Triton release whose onnxruntime backend (1.21) loads the op library.
FIRST_TRITON_WITH_LIBRARY = "25.03"
_MODEL_FILE = "model.onnx"
_CONFIG_FILE = "config.pbtxt"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


# ONNX element type -> Triton data type (the types an exported holocron model can carry at its boundary).
_TRITON_TYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}


@dataclass(frozen=True)
class TritonOptions:
    """How one model is laid out and served.

    Args:
        model_name: folder and ``name`` of the model in the repository (letters, digits, ``_``, ``.``, ``-``).
        model_version: version folder, >= 1.
        max_batch_size: largest batch Triton forms; 0 disables batching (dims then include the batch dimension).
            Batching needs a model whose inputs and outputs have a symbolic first dimension.
        instance_kind: ``auto`` (``KIND_AUTO``: the GPUs where the server has some, else the CPU), ``gpu``
            (``KIND_GPU``) or ``cpu`` (``KIND_CPU``).
        instances: model instances per device, >= 1.
        op_library_path: path of holocron's op library as the server sees it; None uses
            ``<server_repository>/<model_name>/<library file>``.
        server_repository: where the repository is mounted in the serving container (``/models``; KServe:
            ``/mnt/models``).
        op_library: copy the op library and name it in ``model_operations``; False serves the ``holocron`` nodes on
            their fallback functions (Triton releases before 25.03).
    """

    model_name: str
    model_version: int = 1
    max_batch_size: int = 0
    instance_kind: InstanceKind = "auto"
    instances: int = 1
    op_library_path: str | None = None
    server_repository: str = DEFAULT_SERVER_REPOSITORY
    op_library: bool = True

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.fullmatch(self.model_name) or self.model_name in {".", ".."}:
            raise ValueError(
                f"`model_name` must be letters, digits, '_', '.' or '-' (not starting with '.' or '-'); "
                f"got {self.model_name!r}"
            )
        for label, value, low in (
            ("model_version", self.model_version, 1),
            ("max_batch_size", self.max_batch_size, 0),
            ("instances", self.instances, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{label}` must be an int >= {low}; got {value!r}")
        if self.instance_kind not in _KINDS:
            raise ValueError(f"`instance_kind` must be 'auto', 'gpu' or 'cpu'; got {self.instance_kind!r}")
        if self.op_library_path is not None and not self.op_library_path.strip():
            raise ValueError("`op_library_path` must be a non-empty path")
        if not self.server_repository.startswith("/"):
            raise ValueError(f"`server_repository` must be an absolute path; got {self.server_repository!r}")
        if not self.op_library and self.op_library_path is not None:
            raise ValueError("`op_library_path` has no use with op_library=False")


def server_library_path(options: TritonOptions, library_file: str) -> str:
    """The library path the config names: ``options.op_library_path`` or the model folder in the server's mount."""
    if options.op_library_path is not None:
        return options.op_library_path
    return f"{options.server_repository.rstrip('/')}/{options.model_name}/{library_file}"


def _quote(text: str) -> str:
    """``text`` as a protobuf text-format string literal."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in {'"', "\\"}:
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _dims(value: onnx.ValueInfoProto) -> list[int]:
    """Dimensions of a graph input/output, -1 for symbolic or unknown ones."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        raise ValueError(f"graph value {value.name!r} has no shape; Triton needs the rank of every input and output")
    return [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim]


def _io_block(kind: str, values: list[onnx.ValueInfoProto], batching: bool) -> list[str]:
    lines = [f"{kind} ["]
    for index, value in enumerate(values):
        elem_type = value.type.tensor_type.elem_type
        if elem_type not in _TRITON_TYPES:
            raise ValueError(
                f"graph {kind} {value.name!r} has ONNX element type "
                f"{onnx.TensorProto.DataType.Name(elem_type)}, which has no Triton data type here"
            )
        dims = _dims(value)
        if batching:
            if not dims or dims[0] != -1:
                raise ValueError(
                    f"`max_batch_size` > 0 needs a dynamic batch dimension, but graph {kind} {value.name!r} has "
                    f"shape {dims}; export with a dynamic batch (--dynamic-batch)"
                )
            dims = dims[1:]
        lines += [
            "  {",
            f"    name: {_quote(value.name)}",
            f"    data_type: {_TRITON_TYPES[elem_type]}",
            f"    dims: [ {', '.join(str(d) for d in dims)} ]",
            "  }" + ("," if index < len(values) - 1 else ""),
        ]
    lines.append("]")
    return lines


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def config_pbtxt(model: onnx.ModelProto, options: TritonOptions, library_path: str | None) -> str:
    """The ``config.pbtxt`` of ``model`` for Triton's onnxruntime backend.

    Args:
        model: the ONNX model to serve (its graph inputs and outputs become the config's).
        options: name, batching and instances.
        library_path: op library as the server opens it; None writes no ``model_operations``.

    Returns:
        The config in protobuf text format (``inference.ModelConfig``).

    Raises:
        ValueError: batching asked for a model without a dynamic batch dimension, or an unsupported element type.
    """
    batching = options.max_batch_size > 0
    lines = [
        f"name: {_quote(options.model_name)}",
        'backend: "onnxruntime"',
        f"max_batch_size: {options.max_batch_size}",
    ]
    lines += _io_block("input", _graph_inputs(model), batching)
    lines += _io_block("output", list(model.graph.output), batching)
    if batching:
        lines.append("dynamic_batching { }")
    kind = _KINDS[options.instance_kind]
    lines += ["instance_group [", "  {", f"    count: {options.instances}", f"    kind: {kind}", "  }", "]"]
    if library_path is not None:
        lines += ["model_operations {", f"  op_library_filename: {_quote(library_path)}", "}"]
    return "\n".join(lines) + "\n"


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
    if slot.is_symlink() or slot.exists():
        if not overwrite:
            what = f"model {model_name!r} already exists in {str(repo)!r}"
            raise OutputExistsError(
                f"{what}; pass overwrite=True to replace it", cli_message=f"{what}; --force replaces it", path=slot
            )
        if not slot.is_symlink() and not slot.is_dir():
            raise ValueError(f"{str(slot)!r} exists and is not a model folder; not replaced")
    return slot


def write_repository(
    model: onnx.ModelProto,
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
        model: the exported model.
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
        if (slot.is_symlink() or slot.exists()) and not overwrite:
            raise OutputExistsError(f"model folder {str(slot)!r} appeared while writing; not replaced")
        with staging_folder(repo, options.model_name) as staging:
            version_dir = staging / str(options.model_version)
            version_dir.mkdir()
            onnx.save_model(model, version_dir / _MODEL_FILE)
            (staging / _CONFIG_FILE).write_text(config)
            if library_file is not None:
                shutil.copy2(library_file, staging / library_file.name)
            swap_folder_into_place(staging, slot, keep=str.isdigit)
    return slot
