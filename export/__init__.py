"""holocron.export: ONNX and TorchScript export of holocron models, with parity verification.

Public API (imported on first use, as torch, onnx and onnxruntime are heavy):

* :func:`to_onnx` / :func:`to_onnx_proto`: ONNX export through the dynamo or TorchScript exporter, Add2d /
  Involution2d / LambdaLayer as single nodes of the ``holocron`` domain with standard-ONNX fallback functions;
* :func:`to_torchscript`: TorchScript archive;
* :func:`to_triton`: an ONNX export (or TorchScript, for the PyTorch backend) written into a Triton Inference
  Server model repository with the op library;
* :func:`to_float16`: float16 conversion of an exported model (holocron nodes and fallback functions included);
* :func:`reattach_fallback_functions`: restore the fallback functions a tool dropped (e.g. onnxruntime's saved
  optimized model);
* :func:`verify` / :func:`verify_torchscript`: eager PyTorch vs onnxruntime (or the reloaded archive), returning a
  :class:`VerificationReport` (default criterion referenced to a float64 run of the eager model; ``localize=True``
  compares every module's output too);
* :func:`assert_close_to_eager`: the same check as an assertion for users' test suites;
* :func:`load_model`: TorchScript, ``torch.export`` or (trusted) pickled model files;
* :func:`build_demo_model`: the demo network of ``holocron-export --demo``;
* the exceptions :class:`ExportError`, :class:`ModelLoadError`, :class:`UnsafePickleError`,
  :class:`OutputExistsError`, :class:`VerificationFailedError`.

The package is layered along the data flow, each layer importing only those before it::

    errors, files  ->  model/  ->  onnx/, torchscript, triton  ->  parity/  ->  pipeline  ->  cli/

``errors`` and ``files`` (output checks, atomic writes) are the ground floor; ``model`` loads MODEL files, checks
untrusted archives and their graphs, makes inputs and fixes modes; ``onnx`` holds both torch exporters, graph walking,
the finalize step and the per-op exports; ``torchscript`` and ``triton`` write the other artifacts; ``parity``
compares an artifact with eager PyTorch; ``pipeline`` is the one orchestrator (``run_export``, ``to_triton``); ``cli``
holds ``holocron-export`` and ``holocron-verify``. onnxruntime sessions come from :mod:`holocron.runtime`.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import ExportError, ModelLoadError, OutputExistsError, UnsafePickleError
    from .model.demo import DEMO_INPUT_SHAPE, build_demo_model
    from .model.loading import LoadedModel, load_model
    from .onnx.exporters import to_onnx, to_onnx_proto
    from .onnx.ops import reattach_fallback_functions, to_float16
    from .parity.api import assert_close_to_eager, verify, verify_files, verify_torchscript
    from .parity.criteria import ModuleComparison, OutputComparison, UnlocalizedModule
    from .parity.interop import session_initializer
    from .parity.junit import junit_xml
    from .parity.report import VerificationFailedError, VerificationReport
    from .pipeline import to_triton
    from .torchscript import to_torchscript

__all__ = [
    "DEMO_INPUT_SHAPE",
    "ExportError",
    "LoadedModel",
    "ModelLoadError",
    "ModuleComparison",
    "OutputComparison",
    "OutputExistsError",
    "UnlocalizedModule",
    "UnsafePickleError",
    "VerificationFailedError",
    "VerificationReport",
    "assert_close_to_eager",
    "build_demo_model",
    "junit_xml",
    "load_model",
    "reattach_fallback_functions",
    "session_initializer",
    "to_float16",
    "to_onnx",
    "to_onnx_proto",
    "to_torchscript",
    "to_triton",
    "verify",
    "verify_files",
    "verify_torchscript",
]


def _stage_of(name: str) -> ModuleType | None:
    """The module that defines the public ``name``, imported now (plain imports, so the dependencies are visible)."""
    if name in ("DEMO_INPUT_SHAPE", "build_demo_model"):
        from .model import demo

        return demo
    if name in ("ExportError", "ModelLoadError", "OutputExistsError", "UnsafePickleError"):
        from . import errors

        return errors
    if name in ("LoadedModel", "load_model"):
        from .model import loading

        return loading
    if name in ("to_onnx", "to_onnx_proto"):
        from .onnx import exporters

        return exporters
    if name in ("reattach_fallback_functions", "to_float16"):
        from .onnx import ops

        return ops
    if name == "to_triton":
        from . import pipeline

        return pipeline
    if name == "to_torchscript":
        from . import torchscript

        return torchscript
    if name == "session_initializer":
        from .parity import interop

        return interop
    if name == "junit_xml":
        from .parity import junit

        return junit
    if name in ("ModuleComparison", "OutputComparison", "UnlocalizedModule"):
        from .parity import criteria

        return criteria
    if name in ("VerificationFailedError", "VerificationReport"):
        from .parity import report

        return report
    if name in ("assert_close_to_eager", "verify", "verify_files", "verify_torchscript"):
        from .parity import api

        return api
    return None


def __getattr__(name: str) -> Any:
    module = _stage_of(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
