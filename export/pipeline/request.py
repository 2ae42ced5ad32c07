"""What an export is asked to do (:class:`ExportRequest`), checked before any work (:func:`prepare_export`: the
output paths once, the model file's kind once), and what it did (:class:`ExportResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..errors import OutputPathError
from ..files import check_outputs
from ..model.kinds import ModelKind, detect_model_kind
from ..onnx.exporters import Exporter
from ..parity.report import VerificationReport
from ..triton import TritonOptions, check_repository_slot

__all__ = [
    "DEFAULT_TRITON_REPOSITORY",
    "ExportPlan",
    "ExportRequest",
    "ExportResult",
    "OutputFormat",
    "default_output_path",
    "prepare_export",
]

OutputFormat = Literal["onnx", "torchscript", "triton"]


_SUFFIXES: dict[OutputFormat, str] = {"onnx": ".onnx", "torchscript": ".pt", "triton": ""}


#: Default folder of a Triton model repository (``--format triton`` without ``-o``).
DEFAULT_TRITON_REPOSITORY = Path("model_repository")


_DEMO_STEM = "holocron-demo"


@dataclass(frozen=True)
class ExportRequest:
    """What to export, how, and where.

    Args:
        model_path: model file; None with ``demo`` or ``module``.
        demo: export the built-in demo model instead of a file.
        output_format: ``onnx``, ``torchscript`` or ``triton`` (a model in a Triton model repository: ONNX, or
            TorchScript with ``triton.backend`` pytorch).
        output: destination; None derives it from ``model_path`` (or the demo name) and the format's suffix.
        input_shapes: one shape per model input; empty uses the shapes recorded in the model when there are some.
        opset: ONNX opset (ONNX only; None = default).
        dynamic_batch: symbolic batch dimension (ONNX only).
        exporter: torch exporter (ONNX only); None picks dynamo, or the TorchScript exporter for a TorchScript
            model (which ``torch.export`` cannot trace).
        custom_ops: keep ``holocron`` nodes (ONNX only).
        verify: compare with eager PyTorch before writing.
        atol: absolute tolerance of a strict element-wise verification (None with ``rtol`` None: the default
            float64-referenced criterion, see :mod:`~holocron.export.parity.criteria`).
        rtol: relative tolerance of a strict element-wise verification.
        seed: seed of the random inputs.
        report_path: where to write the JSON verification report, if anywhere.
        localize: also compare every module's output with the matching ONNX value (ONNX only; ``"best-effort"``:
            see :func:`~holocron.export.parity.api.verify`).
        force: replace existing output/report files (with ``triton``: an existing model of that name).
        trust_pickle: allow loading a pickled model (runs arbitrary code from the file).
        triton: name, version, batching and instances of the repository model (``triton`` only; required there).
        module: a live module to export instead of a file (Python API).
        example_inputs: the tensors to export ``module`` with (default: seeded ones of ``input_shapes``).
    """

    model_path: Path | None = None
    demo: bool = False
    output_format: OutputFormat = "onnx"
    output: Path | None = None
    input_shapes: tuple[tuple[int, ...], ...] = ()
    opset: int | None = None
    dynamic_batch: bool = False
    exporter: Exporter | None = None
    custom_ops: bool = True
    verify: bool = True
    atol: float | None = None
    rtol: float | None = None
    seed: int = 0
    report_path: Path | None = None
    localize: bool | Literal["best-effort"] = False
    force: bool = False
    trust_pickle: bool = False
    triton: TritonOptions | None = None
    module: nn.Module | None = None
    example_inputs: tuple[torch.Tensor, ...] | None = None

    @property
    def writes_torchscript(self) -> bool:
        """Whether the artifact is a TorchScript archive (``torchscript``, or ``triton`` for the PyTorch backend)."""
        if self.output_format == "triton":
            return self.triton is not None and self.triton.backend == "pytorch"
        return self.output_format == "torchscript"

    def onnx_only_fields(self) -> list[str]:
        """The ONNX-only fields this request sets (an error where it writes TorchScript)."""
        given = {
            "opset": self.opset is not None,
            "dynamic_batch": self.dynamic_batch,
            "exporter": self.exporter is not None,
            "custom_ops": not self.custom_ops,
            "localize": bool(self.localize),
        }
        return [name for name, present in given.items() if present]


@dataclass(frozen=True)
class ExportPlan:
    """A checked request (:func:`prepare_export`): where the model goes (the repository folder for Triton) and the
    model file's kind (None for the demo or a live module), each read once."""

    request: ExportRequest
    output: Path
    model_kind: ModelKind | None


@dataclass(frozen=True)
class ExportResult:
    """What :func:`run_export` did.

    Args:
        output: the written file (the model folder for Triton).
        reports: the verification reports, one per verified batch size (empty without verification).
        notes: remarks for the user (e.g. the tracing fallback).
    """

    output: Path
    reports: tuple[VerificationReport, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def report(self) -> VerificationReport | None:
        """The report of the largest verified batch (None without verification)."""
        return self.reports[-1] if self.reports else None


def default_output_path(request: ExportRequest) -> Path:
    """The model path with the format's suffix (``model.pt2`` -> ``model.onnx``), or ``holocron-demo.<suffix>``.

    A Triton model repository defaults to ``model_repository`` in the working directory.
    """
    if request.output_format == "triton":
        return DEFAULT_TRITON_REPOSITORY
    suffix = _SUFFIXES[request.output_format]
    if request.model_path is None:
        return Path(_DEMO_STEM + suffix)
    return request.model_path.with_suffix(suffix)


def prepare_export(request: ExportRequest, *, cli_names: Mapping[str, str] | None = None) -> ExportPlan:
    """Check ``request`` before any work: its fields, its output paths (once), and read its model file's kind (once).

    Args:
        request: what to export.
        cli_names: request field -> the command line's name for it (``output`` -> ``-o``), for the errors'
            ``cli_message``.

    Returns:
        The plan :func:`run_export` carries out.

    Raises:
        ValueError: an invalid request.
        OutputPathError: outputs that are the same file as each other or the model, or special files.
        OutputExistsError: an output exists and ``force`` is False.
        ModelLoadError: the model file is missing or of no known kind.
    """
    if request.output_format not in _SUFFIXES:
        raise ValueError(f"`output_format` must be onnx, torchscript or triton, got {request.output_format!r}")
    if (request.output_format == "triton") != (request.triton is not None):
        raise ValueError("`triton` options go with output_format='triton', and only with it")
    if request.writes_torchscript and request.onnx_only_fields():
        what = "a TorchScript archive" if request.output_format == "torchscript" else "Triton's PyTorch backend"
        fields = [f"`{name}`" for name in request.onnx_only_fields()]
        verb = "applies" if len(fields) == 1 else "apply"
        raise ValueError(f"{', '.join(fields)} {verb} only to ONNX exports, not to {what}")
    sources = sum((request.model_path is not None, request.demo, request.module is not None))
    if sources != 1:
        raise ValueError("give exactly one of `model_path`, `demo` and `module`")
    names = dict(cli_names or {})
    output = request.output or default_output_path(request)
    inputs = {"model_path": request.model_path}
    if request.triton is None:
        check_outputs(
            {"output": output, "report_path": request.report_path},
            inputs=inputs,
            overwrite=request.force,
            cli_names=names,
        )
    else:
        check_outputs({"report_path": request.report_path}, inputs=inputs, overwrite=request.force, cli_names=names)
        try:
            report = {names.get("report_path", "report_path"): request.report_path}
            check_repository_slot(output, request.triton.model_name, overwrite=request.force, other_outputs=report)
        except OutputPathError:
            raise
        except ValueError as error:
            raise OutputPathError(f"output: {error}", cli_message=f"{names.get('output', 'output')}: {error}") from None
    kind = detect_model_kind(request.model_path) if request.model_path is not None else None
    return ExportPlan(request=request, output=output, model_kind=kind)
