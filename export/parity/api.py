"""The entry points of a parity check: an exported model against eager PyTorch, on the same seeded inputs.

* :func:`verify`: an ONNX model (proto or file) in an onnxruntime session opened by :mod:`holocron.runtime` (with
  holocron's kernels when they are built, or required with ``use_kernels=True``, else on the standard-ONNX fallback
  functions the model carries; the report records which); ``localize=True`` compares every module's output too
  (:mod:`~holocron.export.parity.localize`) and fails when any module boundary diverges, even if the final outputs
  pass; the report names the first divergent module in execution order.
* :func:`verify_torchscript`: a TorchScript archive, reloaded and run by ``torch.jit``.
* :func:`assert_close_to_eager`: either, as an assertion for users' test suites.
* :func:`verify_files`: a MODEL file against an ARTIFACT file, as ``holocron-verify`` does.

The criteria are those of :mod:`~holocron.export.parity.criteria`; the result is a
:class:`~holocron.export.parity.report.VerificationReport`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from holocron._jit import jit_deprecation_silenced

from ..errors import ExportError, ModelLoadError, summarize_error
from ..model.inputs import InputSpec, make_inputs
from ..model.kinds import ArtifactKind, ModelKind, detect_artifact_kind
from ..model.loading import check_torchscript_graphs, check_untrusted_archive, load_model
from ..model.modes import eval_mode
from ..onnx.graph import holocron_nodes
from .criteria import ModuleComparison, UnlocalizedModule, make_judge
from .eager import eager_outputs as run_eager_outputs
from .eager import flatten_outputs, reference_run, run_eager
from .localize import Localize, localization_unavailable, localize_mode, localize_modules, prepare_localization
from .report import ExecutionPath, VerificationReport
from .session import check_feeds, check_providers, load_onnx, open_session

__all__ = [
    "Localize",
    "assert_close_to_eager",
    "onnx_input_shapes",
    "verify",
    "verify_files",
    "verify_torchscript",
]


def verify(
    model: nn.Module,
    onnx_model: onnx.ModelProto | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    use_kernels: bool | None = None,
    providers: Sequence[Any] | None = None,
    localize: Localize = False,
) -> VerificationReport:
    """Run ``model`` eagerly (eval mode) and the exported ``onnx_model`` in onnxruntime on the same inputs; compare.

    Without ``atol``/``rtol`` the criterion is ``float64-referenced`` (``scale-relative`` when the model cannot run
    in float64); with either, ``elementwise`` (the other one taking its default, :data:`DEFAULT_ATOL` or
    :data:`DEFAULT_RTOL`). See the module docstring.

    Args:
        model: the eager PyTorch module the ONNX model was exported from.
        onnx_model: the exported model (proto or file path).
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance (>= 0) of the element-wise criterion.
        rtol: relative tolerance (>= 0) of the element-wise criterion.
        seed: seed of the random inputs.
        use_kernels: True requires holocron's onnxruntime kernels, False forces the fallback functions, None uses
            the kernels when ``holocron.runtime`` is available.
        providers: onnxruntime execution providers, in order of preference (default CPU); each must be available
            (``onnxruntime.get_available_providers()``), rather than silently replaced by the CPU.
        localize: also compare every module's output with the matching ONNX value (``True``: a model or ONNX model
            that cannot be localized raises; ``"best-effort"``: it is verified without, and the report says why).

    Returns:
        The report; ``report.passed`` is the verdict (a failed comparison does not raise).

    Raises:
        ValueError: negative tolerances, inputs that do not fit the ONNX model (count or fixed dimensions), an
            unavailable provider, or ``localize=True`` where localization is impossible
            (:class:`~holocron.export.parity.recording.LocalizationUnavailableError`).
        ExportError: onnxruntime cannot run the model, or the output counts differ.
    """
    judge = make_judge(atol, rtol)
    mode = localize_mode(localize)
    providers = check_providers(providers)
    proto = load_onnx(onnx_model)
    recorder, note = prepare_localization(mode, model, proto)
    tensors = make_inputs(inputs, seed=seed)
    session, with_kernels = open_session(proto, use_kernels, providers)
    check_feeds(session.get_inputs(), tensors)
    feeds = {meta.name: t.detach().cpu().numpy() for meta, t in zip(session.get_inputs(), tensors, strict=True)}
    try:
        onnx_outputs = session.run(None, feeds)
    except Exception as error:
        raise ExportError(f"onnxruntime failed to run the model: {summarize_error(error)}") from error
    record = recorder is not None
    eager_outputs, recording = run_eager(model, tensors, record=record, recorder=recorder)
    names = [meta.name for meta in session.get_outputs()]
    if len(eager_outputs) != len(onnx_outputs):
        raise ExportError(f"eager model returned {len(eager_outputs)} output(s), the ONNX model {len(onnx_outputs)}")
    judge, reference, recording64 = reference_run(judge, model, tensors, record=record, recorder=recorder)
    comparisons = tuple(
        judge.output(name, eager, np.asarray(actual), None if reference is None else reference[index])
        for index, (name, eager, actual) in enumerate(zip(names, eager_outputs, onnx_outputs, strict=True))
    )
    modules: tuple[ModuleComparison, ...] = ()
    unlocalized: tuple[UnlocalizedModule, ...] = ()
    if recording is not None:
        modules, unlocalized = localize_modules(judge, proto, feeds, recording, recording64, use_kernels, providers)
    holocron_ops = sorted({node.op_type for node in holocron_nodes(proto)})
    path: ExecutionPath = (
        "standard-onnx" if not holocron_ops else ("holocron-kernels" if with_kernels else "onnx-fallback")
    )
    return VerificationReport(
        outputs=comparisons,
        execution_path=path,
        providers=tuple(session.get_providers()),
        input_shapes=tuple(tuple(t.shape) for t in tensors),
        seed=seed,
        holocron_ops=tuple(holocron_ops),
        criterion=judge.criterion,
        criterion_note=judge.note,
        localized=recording is not None,
        modules=modules,
        unlocalized_modules=len(unlocalized),
        unlocalized=unlocalized,
        localization_method=recording.method if recording is not None else "",
        localization_note=note,
    )


def verify_torchscript(
    model: nn.Module,
    archive: torch.jit.ScriptModule | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    localize: Localize = False,
) -> VerificationReport:
    """Compare ``model`` (eager, eval mode) with a TorchScript archive on the same seeded inputs.

    The criteria and the report are those of :func:`verify`, without localization: an archive ARTIFACT has no
    exporter scopes to match modules with (``localize=True`` raises, ``"best-effort"`` notes it in the report).

    Args:
        model: the eager PyTorch module the archive was made from.
        archive: the archive's path (loaded with ``torch.jit.load``) or an already loaded ``ScriptModule``.
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance (>= 0) of the element-wise criterion.
        rtol: relative tolerance (>= 0) of the element-wise criterion.
        seed: seed of the random inputs.
        localize: see above.

    Returns:
        The report; ``report.passed`` is the verdict (a failed comparison does not raise).

    Raises:
        ValueError: negative tolerances, ``localize=True``.
        ExportError: the archive cannot be loaded or run, or the output counts differ.
    """
    judge = make_judge(atol, rtol)
    mode = localize_mode(localize)
    note = (
        ""
        if mode is None
        else localization_unavailable(mode, "a TorchScript ARTIFACT has no exporter scopes to match modules")
    )
    tensors = make_inputs(inputs, seed=seed)
    try:
        if isinstance(archive, torch.jit.ScriptModule):
            scripted = archive
        else:
            with jit_deprecation_silenced():
                scripted = torch.jit.load(os.fspath(archive))
        with eval_mode(scripted), torch.no_grad():
            archive_outputs = [t.detach().cpu().numpy() for t in flatten_outputs(scripted(*tensors))]
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(f"the TorchScript archive failed to load or run: {summarize_error(error)}") from error
    eager_outputs = run_eager_outputs(model, tensors)
    if len(eager_outputs) != len(archive_outputs):
        raise ExportError(f"eager model returned {len(eager_outputs)} output(s), the archive {len(archive_outputs)}")
    judge, reference, _ = reference_run(judge, model, tensors, record=False)
    names = [f"output_{i}" for i in range(len(eager_outputs))] if len(eager_outputs) > 1 else ["output"]
    return VerificationReport(
        outputs=tuple(
            judge.output(name, eager, actual, None if reference is None else reference[index])
            for index, (name, eager, actual) in enumerate(zip(names, eager_outputs, archive_outputs, strict=True))
        ),
        execution_path="torchscript",
        providers=("torch.jit",),
        input_shapes=tuple(tuple(t.shape) for t in tensors),
        seed=seed,
        holocron_ops=(),
        criterion=judge.criterion,
        criterion_note=judge.note,
        localization_note=note,
    )


def assert_close_to_eager(
    model: nn.Module,
    artifact: onnx.ModelProto | torch.jit.ScriptModule | str | os.PathLike[str],
    inputs: InputSpec | Sequence[InputSpec],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    use_kernels: bool | None = None,
    localize: Localize = False,
    providers: Sequence[Any] | None = None,
) -> VerificationReport:
    """Assert that an exported ``artifact`` matches eager ``model``, for users' own test suites.

    Args:
        model: the eager PyTorch module.
        artifact: an ONNX model (proto or file) or a TorchScript archive (loaded module or file; a zip file is taken
            as TorchScript, anything else as ONNX).
        inputs: one entry per model input: a tensor, or a shape to fill with seeded ``N(0, 1)`` values.
        atol: absolute tolerance of the element-wise criterion (default: the float64-referenced criterion).
        rtol: relative tolerance of the element-wise criterion.
        seed: seed of the random inputs.
        use_kernels: see :func:`verify` (ONNX only).
        localize: also compare every module's output (ONNX only; see :func:`verify`).
        providers: onnxruntime execution providers (ONNX only; see :func:`verify`).

    Returns:
        The report, when it passed.

    Raises:
        AssertionError: the artifact diverges; the message is the report's table.
        ValueError: ``localize=True`` with a TorchScript artifact or a model that cannot be localized,
            ``providers`` with a TorchScript artifact or naming an unavailable provider, or inputs that do not fit.
        ExportError: the artifact cannot be loaded or run.
    """
    scripted = isinstance(artifact, torch.jit.ScriptModule) or (
        not isinstance(artifact, onnx.ModelProto) and detect_artifact_kind(artifact) == "torchscript"
    )
    if scripted:
        if providers is not None:
            raise ValueError("providers apply to an ONNX artifact only (a TorchScript archive runs in torch.jit)")
        report = verify_torchscript(model, artifact, inputs, atol=atol, rtol=rtol, seed=seed, localize=localize)
    else:
        report = verify(
            model,
            artifact,
            inputs,
            atol=atol,
            rtol=rtol,
            seed=seed,
            use_kernels=use_kernels,
            localize=localize,
            providers=providers,
        )
    if not report.passed:
        raise AssertionError("exported model diverges from eager PyTorch\n" + report.format_table())
    return report


def onnx_input_shapes(proto: onnx.ModelProto) -> tuple[tuple[int, ...], ...] | None:
    """The ONNX model's input shapes when every dimension is fixed, else None."""
    shapes = []
    initializers = {init.name for init in proto.graph.initializer}
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if not dims or any(not dim.HasField("dim_value") or dim.dim_value < 1 for dim in dims):
            return None
        shapes.append(tuple(dim.dim_value for dim in dims))
    return tuple(shapes) or None


def verify_files(
    model_path: str | os.PathLike[str],
    artifact_path: str | os.PathLike[str],
    input_shapes: Sequence[Sequence[int]] = (),
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    use_kernels: bool | None = None,
    localize: Localize = False,
    providers: Sequence[Any] | None = None,
    trust_pickle: bool = False,
    model_kind: ModelKind | None = None,
    artifact_kind: ArtifactKind | None = None,
) -> VerificationReport:
    """Verify an exported file against the model file it was made from (what ``holocron-verify`` runs).

    Args:
        model_path: the eager model: a TorchScript archive, a ``torch.export`` archive, or a pickled module (with
            ``trust_pickle``), loaded by :func:`~holocron.export.model.loading.load_model`.
        artifact_path: the exported file: a TorchScript archive (a zip file) or an ONNX model (anything else).
        input_shapes: one shape per model input; empty uses the ONNX model's when all its dimensions are fixed, else
            the shapes recorded in a ``.pt2`` model.
        atol: absolute tolerance of the element-wise criterion (default: the float64-referenced criterion).
        rtol: relative tolerance of the element-wise criterion.
        seed: seed of the random inputs.
        use_kernels: see :func:`verify` (ONNX only).
        localize: also compare every module's output (ONNX only; see :func:`verify`).
        providers: onnxruntime execution providers (ONNX only; see :func:`verify`).
        trust_pickle: allow a pickled model (unpickling runs code from the file).
        model_kind: the model file's kind when the caller already read it (it is read once per run).
        artifact_kind: the artifact's kind when the caller already read it.

    Returns:
        The report; ``report.passed`` is the verdict.

    Raises:
        ModelLoadError: a file cannot be loaded, or no input shape is known.
        ValueError: ``use_kernels``/``providers``/``localize=True`` with a TorchScript artifact, a MODEL that cannot
            be localized with ``localize=True``, an unavailable provider, or inputs that do not fit.
        ExportError: the artifact cannot be run.
    """
    localize_mode(localize)  # a bad value fails before anything is loaded
    providers = check_providers(providers)
    loaded = load_model(model_path, trust_pickle=trust_pickle, kind=model_kind)
    kind = artifact_kind or detect_artifact_kind(artifact_path)
    recorded = None if loaded.example_inputs is None else tuple(tuple(t.shape) for t in loaded.example_inputs)
    if kind == "torchscript":
        if use_kernels is not None or providers is not None:
            raise ValueError("`use_kernels` and `providers` apply to an ONNX artifact only")
        if not trust_pickle:  # a TorchScript ARTIFACT is code too: the same checks as MODEL's, before it runs
            check_untrusted_archive(Path(artifact_path), "torchscript")
        try:
            with jit_deprecation_silenced():
                archive = torch.jit.load(os.fspath(artifact_path), map_location="cpu")
        except Exception as error:
            raise ModelLoadError(
                f"cannot load TorchScript ARTIFACT {os.fspath(artifact_path)!r}: {summarize_error(error)}"
            ) from error
        if not trust_pickle:
            check_torchscript_graphs(archive, Path(artifact_path))
        shapes = _shapes(input_shapes, None, recorded)
        return verify_torchscript(loaded.module, archive, shapes, atol=atol, rtol=rtol, seed=seed, localize=localize)
    proto = load_onnx(artifact_path)
    shapes = _shapes(input_shapes, onnx_input_shapes(proto), recorded)
    return verify(
        loaded.module,
        proto,
        shapes,
        atol=atol,
        rtol=rtol,
        seed=seed,
        use_kernels=use_kernels,
        localize=localize,
        providers=providers,
    )


def _shapes(
    given: Sequence[Sequence[int]],
    from_onnx: tuple[tuple[int, ...], ...] | None,
    recorded: tuple[tuple[int, ...], ...] | None,
) -> list[tuple[int, ...]]:
    for shapes in (tuple(tuple(s) for s in given), from_onnx, recorded):
        if shapes:
            return list(shapes)
    why = "neither the artifact nor the model file fixes the input shapes"
    raise ModelLoadError(f"`input_shapes` is required: {why}", cli_message=f"--input-shape is required: {why}")
