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
container: by default ``/models/NAME/<library file>``, which is right when the repository is mounted at ``/models``
(``docker run -v REPO:/models ... tritonserver --model-repository=/models``); ``op_library_path`` overrides it.

The model folder is assembled in a hidden temporary folder inside ``REPO`` and renamed into place, so a server
polling the repository never sees half a model, and other models of the repository are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import onnx

from .errors import OutputExistsError, VerificationFailedError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from torch import nn

    from .onnx_export import Exporter

__all__ = [
    "DEFAULT_SERVER_REPOSITORY",
    "InstanceKind",
    "TritonOptions",
    "check_repository_slot",
    "config_pbtxt",
    "server_library_path",
    "to_triton",
    "write_repository",
]

InstanceKind = Literal["gpu", "cpu"]

#: Where the repository is mounted inside the serving container in Triton's own examples.
DEFAULT_SERVER_REPOSITORY = "/models"
_MODEL_FILE = "model.onnx"
_CONFIG_FILE = "config.pbtxt"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

# ONNX element type -> Triton data type (the types an exported holocron model can carry at its boundary).
_TRITON_TYPES = {
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
        instance_kind: ``gpu`` (``KIND_GPU``) or ``cpu`` (``KIND_CPU``).
        instances: model instances per device, >= 1.
        op_library_path: path of holocron's op library as the server sees it; None uses
            ``/models/<model_name>/<library file>``.
    """

    model_name: str
    model_version: int = 1
    max_batch_size: int = 0
    instance_kind: InstanceKind = "gpu"
    instances: int = 1
    op_library_path: str | None = None

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
        if self.instance_kind not in ("gpu", "cpu"):
            raise ValueError(f"`instance_kind` must be 'gpu' or 'cpu'; got {self.instance_kind!r}")
        if self.op_library_path is not None and not self.op_library_path.strip():
            raise ValueError("`op_library_path` must be a non-empty path")


def server_library_path(options: TritonOptions, library_file: str) -> str:
    """The library path the config names: ``options.op_library_path`` or the default inside ``/models``."""
    if options.op_library_path is not None:
        return options.op_library_path
    return f"{DEFAULT_SERVER_REPOSITORY}/{options.model_name}/{library_file}"


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
    kind = "KIND_GPU" if options.instance_kind == "gpu" else "KIND_CPU"
    lines += ["instance_group [", "  {", f"    count: {options.instances}", f"    kind: {kind}", "  }", "]"]
    if library_path is not None:
        lines += ["model_operations {", f"  op_library_filename: {_quote(library_path)}", "}"]
    return "\n".join(lines) + "\n"


def check_repository_slot(repository: str | os.PathLike[str], model_name: str, *, overwrite: bool) -> Path:
    """Check, before any work, that model ``model_name`` may be written into ``repository``.

    Returns:
        The model folder ``repository/model_name``.

    Raises:
        OutputExistsError: the model exists and ``overwrite`` is False.
        ValueError: ``repository`` is not a folder, or the model's path is not a folder or a symlink.
    """
    repo = Path(repository)
    if repo.exists() and not repo.is_dir():
        raise ValueError(f"repository {str(repo)!r} exists and is not a folder")
    slot = repo / model_name
    if slot.is_symlink() or slot.exists():
        if not overwrite:
            raise OutputExistsError(f"model {model_name!r} already exists in {str(repo)!r}; --force replaces it")
        if not slot.is_symlink() and not slot.is_dir():
            raise ValueError(f"{str(slot)!r} exists and is not a model folder; not replaced")
    return slot


@contextlib.contextmanager
def _staging_folder(repo: Path, model_name: str) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(dir=repo, prefix=f".{model_name}.", suffix=".tmp"))
    try:
        staging.chmod(0o777 & ~_umask())
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    with _staging_folder(repo, options.model_name) as staging:
        version_dir = staging / str(options.model_version)
        version_dir.mkdir()
        onnx.save_model(model, version_dir / _MODEL_FILE)
        (staging / _CONFIG_FILE).write_text(config)
        if library_file is not None:
            shutil.copy2(library_file, staging / library_file.name)
        _swap_into_place(staging, slot, options.model_version, overwrite=overwrite)
    return slot


def _swap_into_place(staging: Path, slot: Path, version: int, *, overwrite: bool) -> None:
    if not (slot.is_symlink() or slot.exists()):
        try:
            os.rename(staging, slot)
        except OSError as error:  # another writer created it meanwhile
            raise OutputExistsError(f"model folder {str(slot)!r} appeared while writing; not replaced") from error
        return
    if not overwrite:
        raise OutputExistsError(f"model folder {str(slot)!r} appeared while writing; not replaced")
    retired = Path(tempfile.mkdtemp(dir=slot.parent, prefix=f".{slot.name}.", suffix=".old"))
    retired.rmdir()
    os.rename(slot, retired)
    if retired.is_dir() and not retired.is_symlink():
        for entry in retired.iterdir():
            if entry.is_dir() and entry.name.isdigit() and entry.name != str(version):
                os.rename(entry, staging / entry.name)
    os.rename(staging, slot)
    if retired.is_symlink() or not retired.is_dir():
        retired.unlink()
    else:
        shutil.rmtree(retired, ignore_errors=True)


def to_triton(
    model: nn.Module,
    args: torch.Tensor | Sequence[torch.Tensor],
    repository: str | os.PathLike[str],
    *,
    model_name: str,
    model_version: int = 1,
    max_batch_size: int = 0,
    instance_kind: InstanceKind = "gpu",
    instances: int = 1,
    op_library_path: str | None = None,
    opset: int | None = None,
    exporter: Exporter = "dynamo",
    custom_ops: bool = True,
    verify: bool = True,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` to ONNX, verify it against eager PyTorch, and write it into a Triton model repository.

    With ``max_batch_size`` > 0 the model is exported with a dynamic batch dimension and verified at batch 1 and at
    ``max_batch_size``. The op library is copied next to the config when the model holds ``holocron`` nodes.

    Args:
        model: the module to export.
        args: example input tensor(s) (batch 1 recommended).
        repository: the model repository folder.
        model_name: the model's folder and Triton name.
        model_version: version folder, >= 1.
        max_batch_size: largest batch Triton forms; 0 disables batching.
        instance_kind: ``gpu`` or ``cpu`` instances.
        instances: instances per device.
        op_library_path: the library path as the server sees it; None uses ``/models/<model_name>/<library file>``.
        opset: ONNX opset (None: the exporter's default).
        exporter: ``dynamo`` or ``torchscript``.
        custom_ops: keep ``holocron`` nodes (False writes standard ONNX only, and no library).
        verify: compare with eager PyTorch before writing.
        overwrite: replace an existing model of that name (other models are never touched).

    Returns:
        The model folder ``repository/model_name``.

    Raises:
        OutputExistsError: the model exists and ``overwrite`` is False (checked before any work).
        VerificationFailedError: the export diverges from eager PyTorch; nothing is written.
        ValueError: invalid options.
    """
    import torch

    from . import verification
    from .onnx_export import to_onnx_proto
    from .onnx_graph import holocron_nodes

    options = TritonOptions(model_name, model_version, max_batch_size, instance_kind, instances, op_library_path)
    check_repository_slot(repository, model_name, overwrite=overwrite)
    example = (args,) if isinstance(args, torch.Tensor) else tuple(args)
    proto = to_onnx_proto(
        model, example, opset=opset, dynamic_batch=max_batch_size > 0, custom_ops=custom_ops, exporter=exporter
    )
    if verify:
        batches = sorted({1, max_batch_size}) if max_batch_size > 0 else [None]
        for batch in batches:
            shapes = [tuple(t.shape) if batch is None else (batch, *t.shape[1:]) for t in example]
            report = verification.verify(model, proto, shapes)
            if not report.passed:
                raise VerificationFailedError(report.failure_summary(), report)
    library = None
    if holocron_nodes(proto):
        from holocron.runtime import library_path

        library = library_path()
    return write_repository(proto, repository, options, library=library, overwrite=overwrite)
