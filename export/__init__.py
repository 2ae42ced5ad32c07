"""holocron.export: ONNX and TorchScript export of holocron models, with parity verification.

Public API (imported on first use, as torch, onnx and onnxruntime are heavy):

* :func:`to_onnx` / :func:`to_onnx_proto`: ONNX export through the dynamo or TorchScript exporter, Add2d /
  Involution2d / LambdaLayer as single nodes of the ``holocron`` domain with standard-ONNX fallback functions;
* :func:`to_torchscript`: TorchScript archive;
* :func:`to_triton`: an ONNX export written into a Triton Inference Server model repository with the op library;
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

One module per stage: ``files`` (output checks, atomic writes), ``model_loading`` (model files, inputs, eval mode),
``onnx_export`` (both torch exporters), ``onnx_graph`` (the ``holocron`` domain, fallback functions, names, checks),
``torchscript_export``, ``verification`` (and its report), ``pipeline`` (``run_export``, which calls each stage once),
``triton`` (model repositories), ``demo``, ``cli`` (``holocron-export``), ``verify_cli`` (``holocron-verify``)
and ``errors``. onnxruntime sessions come from :mod:`holocron.runtime`.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .demo import DEMO_INPUT_SHAPE, build_demo_model
    from .errors import ExportError, ModelLoadError, OutputExistsError, UnsafePickleError, VerificationFailedError
    from .model_loading import LoadedModel, load_model
    from .onnx_export import to_onnx, to_onnx_proto
    from .ops import reattach_fallback_functions, to_float16
    from .torchscript_export import to_torchscript
    from .triton import to_triton
    from .verification import (
        ModuleComparison,
        OutputComparison,
        VerificationReport,
        assert_close_to_eager,
        verify,
        verify_torchscript,
    )

__all__ = [
    "DEMO_INPUT_SHAPE",
    "ExportError",
    "LoadedModel",
    "ModelLoadError",
    "ModuleComparison",
    "OutputComparison",
    "OutputExistsError",
    "UnsafePickleError",
    "VerificationFailedError",
    "VerificationReport",
    "assert_close_to_eager",
    "build_demo_model",
    "load_model",
    "reattach_fallback_functions",
    "to_float16",
    "to_onnx",
    "to_onnx_proto",
    "to_torchscript",
    "to_triton",
    "verify",
    "verify_torchscript",
]


def _stage_of(name: str) -> ModuleType | None:
    """The module that defines the public ``name``, imported now (plain imports, so the dependencies are visible)."""
    if name in ("DEMO_INPUT_SHAPE", "build_demo_model"):
        from . import demo

        return demo
    if name in ("ExportError", "ModelLoadError", "OutputExistsError", "UnsafePickleError", "VerificationFailedError"):
        from . import errors

        return errors
    if name in ("LoadedModel", "load_model"):
        from . import model_loading

        return model_loading
    if name in ("to_onnx", "to_onnx_proto"):
        from . import onnx_export

        return onnx_export
    if name in ("reattach_fallback_functions", "to_float16"):
        from . import ops

        return ops
    if name == "to_triton":
        from . import triton

        return triton
    if name == "to_torchscript":
        from . import torchscript_export

        return torchscript_export
    if name in (
        "ModuleComparison",
        "OutputComparison",
        "VerificationReport",
        "assert_close_to_eager",
        "verify",
        "verify_torchscript",
    ):
        from . import verification

        return verification
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
