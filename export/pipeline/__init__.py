"""The one export orchestrator: load, export, verify, then write, all or nothing (ONNX, TorchScript and Triton).

:func:`prepare_export` checks a request before any work and reads what it needs once: the output paths (once per
run, :func:`~holocron.export.files.check_outputs`, or the repository slot for Triton) and the model file's kind
(:func:`~holocron.export.model.kinds.detect_model_kind`). :func:`run_export` then calls each stage once, in order:

1. :mod:`~holocron.export.model` loads the model (the kind already read) or builds the demo, makes seeded inputs and
   checks the model takes them;
2. :mod:`~holocron.export.onnx.exporters` or :mod:`~holocron.export.torchscript` exports it in memory;
3. :mod:`~holocron.export.parity` compares the result with eager PyTorch: once, or for a batching Triton model at
   batch 1 and at ``max_batch_size``, or for a dynamic-batch ONNX model at another batch size than the export's;
4. :mod:`~holocron.export.files` writes the JSON report, when asked for, whatever the verdict, then the model only if
   it passed, atomically (:mod:`~holocron.export.triton` for a repository). ``holocron-export`` and the Python API
   (:func:`to_triton`) go through the same path.
"""

from .request import (
    DEFAULT_TRITON_REPOSITORY,
    ExportPlan,
    ExportRequest,
    ExportResult,
    OutputFormat,
    default_output_path,
    prepare_export,
)
from .run import run_export, to_triton

__all__ = [
    "DEFAULT_TRITON_REPOSITORY",
    "ExportPlan",
    "ExportRequest",
    "ExportResult",
    "OutputFormat",
    "default_output_path",
    "prepare_export",
    "run_export",
    "to_triton",
]
