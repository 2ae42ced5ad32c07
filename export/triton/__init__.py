"""Triton Inference Server model repositories for exported models, with holocron's op library beside the model.

Two of Triton's backends serve holocron models. The onnxruntime backend serves ``REPO/NAME/VERSION/model.onnx`` as
described by ``REPO/NAME/config.pbtxt`` and registers the custom-op libraries that the config names under
``model_operations`` before it creates the session. The PyTorch (libtorch) backend serves a TorchScript archive,
``REPO/NAME/VERSION/model.pt``, whose ``holocron::*`` calls need holocron's torch op library loaded into the server
process; that backend does not open ``model_operations`` (Triton loads TorchScript custom ops with ``LD_PRELOAD``), so
the config still names the library there, for the reader and for tools, and says in a comment how to load it.
:func:`write_repository` lays out one model of such a repository::

    REPO/
      NAME/
        config.pbtxt
        libholocron_ort.so      (onnxruntime: only when the model holds ``holocron`` nodes)
        libholocron_torch.so    (pytorch: only when the archive calls ``holocron::*`` ops)
        1/
          model.onnx | model.pt

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

from .config import ModelSignature, TensorSpec, TorchScriptModel, config_pbtxt
from .options import (
    BACKENDS,
    DEFAULT_SERVER_REPOSITORY,
    FIRST_TRITON_WITH_LIBRARY,
    Backend,
    InstanceKind,
    TritonOptions,
    server_library_path,
)
from .repository import check_repository_slot, write_repository

__all__ = [
    "BACKENDS",
    "DEFAULT_SERVER_REPOSITORY",
    "FIRST_TRITON_WITH_LIBRARY",
    "Backend",
    "InstanceKind",
    "ModelSignature",
    "TensorSpec",
    "TorchScriptModel",
    "TritonOptions",
    "check_repository_slot",
    "config_pbtxt",
    "server_library_path",
    "write_repository",
]
