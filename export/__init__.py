"""holocron.export: ONNX and TorchScript export of holocron models, with parity verification.

Public API (imported on first use, as torch, onnx and onnxruntime are heavy):

* :func:`to_onnx` / :func:`to_onnx_proto`: ONNX export through the dynamo or TorchScript exporter, Add2d /
  Involution2d / LambdaLayer as single nodes of the ``holocron`` domain with standard-ONNX fallback functions;
* :func:`to_torchscript`: TorchScript archive;
* :func:`verify` / :func:`verify_torchscript`: eager PyTorch vs onnxruntime (or the reloaded archive), returning a
  :class:`VerificationReport`;
* :func:`load_model`: TorchScript, ``torch.export`` or (trusted) pickled model files;
* :func:`build_demo_model`: the demo network of ``holocron-export --demo``;
* the exceptions :class:`ExportError`, :class:`ModelLoadError`, :class:`OutputExistsError`,
  :class:`VerificationFailedError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .demo import DEMO_INPUT_SHAPE, build_demo_model
    from .errors import ExportError, ModelLoadError, OutputExistsError, VerificationFailedError
    from .model_loading import LoadedModel, load_model
    from .onnx_export import to_onnx, to_onnx_proto
    from .torchscript_export import to_torchscript
    from .verification import verify, verify_torchscript
    from .verification_report import OutputComparison, VerificationReport

_EXPORTS: dict[str, str] = {
    "DEMO_INPUT_SHAPE": "demo",
    "build_demo_model": "demo",
    "ExportError": "errors",
    "ModelLoadError": "errors",
    "OutputExistsError": "errors",
    "VerificationFailedError": "errors",
    "LoadedModel": "model_loading",
    "load_model": "model_loading",
    "to_onnx": "onnx_export",
    "to_onnx_proto": "onnx_export",
    "to_torchscript": "torchscript_export",
    "OutputComparison": "verification_report",
    "VerificationReport": "verification_report",
    "verify": "verification",
    "verify_torchscript": "verification",
}

__all__ = [
    "DEMO_INPUT_SHAPE",
    "ExportError",
    "LoadedModel",
    "ModelLoadError",
    "OutputComparison",
    "OutputExistsError",
    "VerificationFailedError",
    "VerificationReport",
    "build_demo_model",
    "load_model",
    "to_onnx",
    "to_onnx_proto",
    "to_torchscript",
    "verify",
    "verify_torchscript",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
