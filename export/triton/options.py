"""What one model of a Triton repository is: its name, version, backend, batching, instances and op library."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BACKENDS",
    "DEFAULT_SERVER_REPOSITORY",
    "FIRST_TRITON_WITH_LIBRARY",
    "KINDS",
    "Backend",
    "InstanceKind",
    "TritonOptions",
    "server_library_path",
]

InstanceKind = Literal["auto", "gpu", "cpu"]
#: ``instance_kind`` -> the kind Triton's config names.
KINDS: dict[str, str] = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
Backend = Literal["onnxruntime", "pytorch"]
#: Triton backends a repository model can be written for, and the model file each one opens.
BACKENDS: dict[str, str] = {"onnxruntime": "model.onnx", "pytorch": "model.pt"}

#: Where the repository is mounted inside the serving container in Triton's own examples.
DEFAULT_SERVER_REPOSITORY = "/models"
#: Oldest Triton release whose onnxruntime backend (1.21) loads the op library.
FIRST_TRITON_WITH_LIBRARY = "25.03"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


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
            their fallback functions (Triton releases before 25.03; onnxruntime backend only: a TorchScript archive
            has no fallback for its ``holocron::*`` calls).
        backend: ``onnxruntime`` (an ONNX model, ``libholocron_ort.so``) or ``pytorch`` (a TorchScript archive,
            ``libholocron_torch.so``, CPU instances where the archive calls ``holocron::*`` ops: the torch op
            library has no CUDA kernels yet).
    """

    model_name: str
    model_version: int = 1
    max_batch_size: int = 0
    instance_kind: InstanceKind = "auto"
    instances: int = 1
    op_library_path: str | None = None
    server_repository: str = DEFAULT_SERVER_REPOSITORY
    op_library: bool = True
    backend: Backend = "onnxruntime"

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
        if self.instance_kind not in KINDS:
            raise ValueError(f"`instance_kind` must be 'auto', 'gpu' or 'cpu'; got {self.instance_kind!r}")
        if self.op_library_path is not None and not self.op_library_path.strip():
            raise ValueError("`op_library_path` must be a non-empty path")
        if not self.server_repository.startswith("/"):
            raise ValueError(f"`server_repository` must be an absolute path; got {self.server_repository!r}")
        if not self.op_library and self.op_library_path is not None:
            raise ValueError("`op_library_path` has no use with op_library=False")
        if self.backend not in BACKENDS:
            raise ValueError(f"`backend` must be 'onnxruntime' or 'pytorch'; got {self.backend!r}")
        if self.backend == "pytorch" and not self.op_library:
            raise ValueError(
                "`op_library=False` applies to the onnxruntime backend only: a TorchScript archive has no fallback "
                "for its holocron::* calls"
            )


def server_library_path(options: TritonOptions, library_file: str) -> str:
    """The library path the config names: ``options.op_library_path`` or the model folder in the server's mount."""
    if options.op_library_path is not None:
        return options.op_library_path
    return f"{options.server_repository.rstrip('/')}/{options.model_name}/{library_file}"
