"""Load a MODEL file on CPU: a TorchScript archive, a ``torch.export`` archive, or a pickle.

The kind comes from :func:`~holocron.export.model.kinds.detect_model_kind` (read from the contents, once per run:
callers that already read it pass it on). Unless the caller trusts the file (``trust_pickle=True``,
``--trust-pickle``), nothing from it runs: a pickle is refused (loading one runs arbitrary code), an archive is first
checked by :func:`~holocron.export.model.archives.check_archive` (nothing torch would run or read unrestricted),
then loaded with torch's restricted unpickler forced for every pickle in it
(:func:`~holocron.export.model.archives.weights_only_loads`), and its graphs are checked against the allow-list of
:mod:`~holocron.export.model.graphs` before anything calls them.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from holocron._jit import jit_deprecation_silenced
from holocron._upstream import UPSTREAM_ENV

from ..errors import ModelLoadError, UnsafePickleError, summarize_error
from .archives import ArchiveCheckError, check_archive, weights_only_loads
from .graphs import UnsafeGraphError, check_exported_program, check_script_module
from .kinds import ModelKind, detect_model_kind

__all__ = ["LoadedModel", "check_torchscript_graphs", "check_untrusted_archive", "load_model"]


@dataclass(frozen=True)
class LoadedModel:
    """A model read from disk.

    Args:
        module: the module to export (CPU).
        kind: what the file was.
        path: where it was read from.
        example_inputs: positional example inputs stored in the file (``torch.export`` archives), else None.
    """

    module: nn.Module
    kind: ModelKind
    path: Path
    example_inputs: tuple[torch.Tensor, ...] | None = None


def _require_module(obj: object, file: Path) -> nn.Module:
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict):
        raise ModelLoadError(
            f"model file {str(file)!r} holds a dict (a state_dict?), not a module: the architecture is missing; "
            "save the whole module, a TorchScript archive or a torch.export archive"
        )
    raise ModelLoadError(f"model file {str(file)!r} holds a {type(obj).__name__}, not a torch.nn.Module")


def _reject_plain_data(file: Path) -> None:
    """Name the problem when an untrusted pickle holds plain data (a state_dict), which loads without running code."""
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:
        return  # it holds more than tensors and containers: the caller refuses it as an untrusted pickle
    _require_module(obj, file)


def _refusal(file: Path, what: str) -> UnsafePickleError:
    message = f"refusing to load {str(file)!r}: {what}, so loading or running it could act outside the process"
    return UnsafePickleError(
        f"{message}; pass trust_pickle=True only if you trust the file",
        cli_message=f"{message}; pass --trust-pickle only if you trust the file",
    )


def _load_torch_export(file: Path, trusted: bool) -> LoadedModel:
    try:
        if trusted:
            program = torch.export.load(file)
        else:
            with weights_only_loads():
                program = torch.export.load(file)
            check_exported_program(program)
        module = program.module()
    except UnsafeGraphError as unsafe:
        raise _refusal(file, f"its {unsafe.where} calls {unsafe.op}, outside the side-effect-free ops") from None
    except Exception as error:
        reason = None if trusted else _weights_only_refusal(error)
        if reason is not None:
            raise _refusal(file, f"a pickle in it is more than plain data ({reason})") from None
        hint = _import_hint(error)
        raise ModelLoadError(
            f"cannot load torch.export archive {str(file)!r}: {summarize_error(error)}{hint}"
        ) from error
    example_inputs = None
    if program.example_inputs is not None:
        args, kwargs = program.example_inputs
        if not kwargs and all(isinstance(arg, torch.Tensor) for arg in args):
            example_inputs = tuple(args)
    return LoadedModel(module, "torch_export", file, example_inputs)


def _weights_only_refusal(error: BaseException) -> str | None:
    """What torch's restricted unpickler refused (e.g. ``Unsupported global: GLOBAL io.open ...``), if it did."""
    cause: BaseException | None = error
    while cause is not None:
        text = str(cause)
        if "Weights only load failed" in text:
            detail = text.partition("WeightsUnpickler error:")[2] or text
            return detail.strip().split(". ")[0].split("\n")[0]
        cause = cause.__cause__ or cause.__context__
    return None


def _load_torchscript(file: Path, trusted: bool) -> LoadedModel:
    try:
        with jit_deprecation_silenced():
            module = torch.jit.load(str(file), map_location="cpu")
    except Exception as error:
        raise ModelLoadError(f"cannot load TorchScript archive {str(file)!r}: {summarize_error(error)}") from error
    if not trusted:
        check_torchscript_graphs(module, file)
    return LoadedModel(module, "torchscript", file)


def check_torchscript_graphs(module: nn.Module, file: Path) -> None:
    """Refuse a loaded TorchScript ``module`` (read from ``file``) whose methods call ops outside the allow-list."""
    try:
        check_script_module(module)
    except UnsafeGraphError as unsafe:
        raise _refusal(file, f"its method {unsafe.where} calls {unsafe.op}, outside the side-effect-free ops") from None


def check_untrusted_archive(file: Path, kind: ModelKind) -> None:
    """Refuse an archive with a member that torch would run or read unrestricted, or that cannot be checked."""
    try:
        check_archive(file, "torchscript" if kind == "torchscript" else "torch_export")
    except ArchiveCheckError as unsafe:
        raise _refusal(file, f"its member {unsafe.member} {unsafe.reason}") from unsafe
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(f"model file {str(file)!r} is a corrupt zip archive: {summarize_error(error)}") from error


def _import_hint(error: BaseException) -> str:
    """A hint for a pickle naming a class that cannot be imported ('' for other errors)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ImportError):
            module = getattr(cause, "name", None) or "its module"
            if module.split(".")[0] == "holocron":
                return (
                    f"; the pickle refers to {module!r}, which is upstream holocron's (pylocron) code, not part of "
                    f"this package: install it beside this package and name its folder in {UPSTREAM_ENV} (README: "
                    "'Upstream holocron beside this package')"
                )
            return (
                f"; the pickle refers to code in module {module!r}, which cannot be imported: add the folder that "
                "holds it to PYTHONPATH"
            )
        if isinstance(cause, AttributeError) and "Can't get attribute" in str(cause):
            return "; the pickle refers to a class its module no longer defines (or that PYTHONPATH does not reach)"
        cause = cause.__cause__ or cause.__context__
    return ""


def load_model(
    path: str | os.PathLike[str], *, trust_pickle: bool = False, kind: ModelKind | None = None
) -> LoadedModel:
    """Load a model file for export, on CPU.

    Args:
        path: TorchScript archive (``torch.jit.save``), ``torch.export`` archive (``torch.export.save``, ``.pt2``),
            or a whole module pickled with ``torch.save``.
        trust_pickle: allow loading a pickle. Unpickling runs arbitrary code from the file: only for files you
            trust.
        kind: the file's kind when the caller already read it with
            :func:`~holocron.export.model.kinds.detect_model_kind`; None reads it here.

    Returns:
        The module and what kind of file it came from.

    Raises:
        UnsafePickleError: without ``trust_pickle``: a pickle; an archive with a member torch would run or read
            unrestricted, a pickle that is more than plain data, or a graph calling an op outside the allow-list.
        ModelLoadError: missing, empty, corrupt or unrecognized file; a file that holds something other than a
            module; a trusted pickle naming code that cannot be imported (the message suggests ``PYTHONPATH``).
    """
    file = Path(path)
    kind = kind or detect_model_kind(file)
    if kind != "pickle" and not trust_pickle:
        check_untrusted_archive(file, kind)
    # Archives and pickles that call torch.ops.holocron.* need the ops registered before loading; a model without
    # holocron ops still loads where they are unavailable (one with them fails below with torch's message).
    with contextlib.suppress(ImportError):
        import holocron.ops  # noqa: F401  (registers torch.ops.holocron.*)
    if kind == "torch_export":
        return _load_torch_export(file, trust_pickle)
    if kind == "torchscript":
        return _load_torchscript(file, trust_pickle)
    if not trust_pickle:
        _reject_plain_data(file)
        what = f"refusing to load {str(file)!r}: it is a pickle, and loading a pickle runs arbitrary code from the file"
        advice = "only if you trust it, or save a TorchScript/torch.export archive"
        raise UnsafePickleError(
            f"{what}; pass trust_pickle=True {advice}", cli_message=f"{what}; pass --trust-pickle {advice}"
        )
    try:
        obj = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:
        hint = _import_hint(error)
        raise ModelLoadError(f"cannot unpickle {str(file)!r}: {summarize_error(error)}{hint}") from error
    return LoadedModel(_require_module(obj, file), kind, file)
