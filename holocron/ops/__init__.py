"""holocron's custom torch operators (``torch.ops.holocron.*``), one file per op, all following ``contract``.

Importing this package registers the ops (eager CPU/CUDA kernels, fake kernels for tracing, autograd) with
``torch.library``; the wrappers below are plain functions that ``torch.jit.script`` compiles to a call of the op.
Where the package was built with torch's headers, the ops' schemas and CPU kernels come from the native library
:func:`torch_library_path` (onnxruntime's kernels; ``HOLOCRON_PURE_TORCH=1`` opts out; :func:`torch_library_loaded`
says which path runs), which also serves processes
that load TorchScript archives without importing holocron.
"""

from holocron import _upstream
from holocron.ops._native import TorchLibraryNotBuiltError, torch_library_path
from holocron.ops._native import is_loaded as torch_library_loaded
from holocron.ops.add2d import add2d
from holocron.ops.involution2d import involution2d
from holocron.ops.lambda_layer import lambda_layer

__all__ = [
    "TorchLibraryNotBuiltError",
    "add2d",
    "involution2d",
    "lambda_layer",
    "torch_library_loaded",
    "torch_library_path",
]

# ``holocron.ops.boxes`` (upstream's box ops, which its detection models import) when upstream is installed beside.
_upstream.extend_path(__path__, "ops")
