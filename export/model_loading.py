"""The model side of an export: load the MODEL file, make its example inputs, check they fit, fix its mode.

A MODEL given to ``holocron-export`` is a TorchScript archive, a ``torch.export`` archive, or a pickle.

The kind is read from the file's contents, not its suffix:

======================  =========================================================  ===============================
kind                    recognized by                                              loaded with
======================  =========================================================  ===============================
``torchscript``         zip archive with ``constants.pkl`` and a ``code/`` folder  ``torch.jit.load``
``torch_export``        zip archive with ``archive_format`` / ``models/*.json``    ``torch.export.load(...).module()``
``pickle``              ``torch.save`` zip (``data.pkl`` only) or a raw pickle     ``torch.load(weights_only=False)``
======================  =========================================================  ===============================

Loading a pickle runs arbitrary code from the file, so it is refused unless the caller trusts the file
(``trust_pickle=True``, ``--trust-pickle``). Archives hold pickles too (``torch.export.load`` falls back to a full
unpickler when the weights-only one refuses them): without trust, every pickle in an archive is first checked by
:func:`check_archive_pickles`, which runs none of it, and an archive naming anything
but tensors, storages, dtypes and plain containers is refused.

Exported graphs are inference graphs: models are exported and compared in eval mode (:func:`eval_mode`).

Pickle safety (checking, without running anything, that every pickle inside a MODEL archive is plain data):
``torch.export.load`` unpickles an archive's sample inputs (and pickled weights or constants) and, when torch's
weights-only unpickler refuses them, falls back to a full unpickler, which runs whatever a ``__reduce__`` payload
asks for. So before torch reads an untrusted archive, :func:`check_archive_pickles` walks every member (and the zip
archives nested in it, such as the ``torch.save`` file of the sample inputs) and unpickles each pickle with
:class:`_CheckingUnpickler`: it resolves no global at all. Names on the allow-list (tensor rebuild functions,
storages, dtypes, plain containers; TorchScript's own classes in a TorchScript archive) become inert placeholders;
any other name refuses the file. Nothing from the file is imported, called or built.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import pickle
import pickletools
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import torch
from torch import nn

from .errors import ModelLoadError, UnsafePickleError, summarize_error

__all__ = [
    "InputSpec",
    "LoadedModel",
    "ModelKind",
    "PickleCheckError",
    "check_archive_pickles",
    "check_inputs",
    "detect_model_kind",
    "eval_mode",
    "find_unsafe_global",
    "load_model",
    "make_inputs",
    "mode_is_fixed",
    "static_batch_inputs",
]

ModelKind = Literal["torchscript", "torch_export", "pickle"]
#: An input given either as a tensor (used as is) or as a shape (filled with seeded standard-normal values).
InputSpec = torch.Tensor | Sequence[int]

#: First byte of a pickle stream of protocol 2 or later (``torch.save`` with the legacy, non-zip format).
_PICKLE_PROTO = 0x80


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


def detect_model_kind(path: str | os.PathLike[str]) -> ModelKind:
    """Tell a TorchScript archive, a ``torch.export`` archive and a pickled object apart from their contents.

    Raises:
        ModelLoadError: the file is missing, not a regular file, empty, or none of the three kinds.
    """
    file = Path(path)
    if not file.exists():
        raise ModelLoadError(f"model file {str(file)!r} does not exist")
    if not file.is_file():
        raise ModelLoadError(f"model path {str(file)!r} is not a regular file")
    if file.stat().st_size == 0:
        raise ModelLoadError(f"model file {str(file)!r} is empty")
    if not zipfile.is_zipfile(file):
        with file.open("rb") as handle:
            first = handle.read(1)
        if first and first[0] == _PICKLE_PROTO:
            return "pickle"
        raise ModelLoadError(
            f"model file {str(file)!r} is not a TorchScript archive, a torch.export archive (.pt2) "
            "or a torch.save pickle (corrupt or unknown format)"
        )
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(f"model file {str(file)!r} is a corrupt zip archive: {summarize_error(error)}") from error
    parts = [name.split("/", 1)[-1] for name in names]
    if "archive_format" in parts or any(p.startswith("models/") and p.endswith(".json") for p in parts):
        return "torch_export"
    if "constants.pkl" in parts and any(p.startswith("code/") for p in parts):
        return "torchscript"
    if "data.pkl" in parts:
        return "pickle"
    raise ModelLoadError(
        f"model file {str(file)!r} is a zip archive but not a TorchScript, torch.export or torch.save archive"
    )


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


def _load_torch_export(file: Path) -> LoadedModel:
    try:
        program = torch.export.load(file)
        module = program.module()
    except Exception as error:
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


def _refuse_unsafe_archive(file: Path, kind: ModelKind) -> None:
    try:
        check_archive_pickles(file, torchscript=kind == "torchscript")
    except PickleCheckError as unsafe:
        what = (
            f"refusing to load {str(file)!r}: its pickle {unsafe.member} {unsafe.reason}, so loading it could run code"
        )
        raise UnsafePickleError(
            f"{what}; pass trust_pickle=True only if you trust the file",
            cli_message=f"{what}; pass --trust-pickle only if you trust the file",
        ) from unsafe
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(f"model file {str(file)!r} is a corrupt zip archive: {summarize_error(error)}") from error


def _import_hint(error: BaseException) -> str:
    """A hint for a pickle naming a class that cannot be imported ('' for other errors)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ImportError):
            module = getattr(cause, "name", None) or "its module"
            return (
                f"; the pickle refers to code in module {module!r}, which cannot be imported: add the folder that "
                "holds it to PYTHONPATH"
            )
        if isinstance(cause, AttributeError) and "Can't get attribute" in str(cause):
            return "; the pickle refers to a class its module no longer defines (or that PYTHONPATH does not reach)"
        cause = cause.__cause__ or cause.__context__
    return ""


def static_batch_inputs(path: str | os.PathLike[str]) -> list[str] | None:
    """Names of the user inputs of a ``torch.export`` archive whose dimension 0 was exported as a fixed size.

    Reads the archive's serialized graph (JSON) without torch.

    Returns:
        The input names (empty when every batch dimension is symbolic), or None when the archive's layout is not
        understood.
    """
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.split("/", 1)[-1].startswith("models/") and n.endswith(".json")]
            if len(names) != 1:
                return None
            program = json.loads(archive.read(names[0]))
        graph = program["graph_module"]["graph"]
        values = graph["tensor_values"]
        fixed = []
        for spec in program["graph_module"]["signature"]["input_specs"]:
            if "user_input" not in spec:
                continue
            argument = spec["user_input"]["arg"]
            if "as_tensor" not in argument:
                continue
            name = argument["as_tensor"]["name"]
            sizes = values[name]["sizes"]
            if sizes and "as_int" in sizes[0]:
                fixed.append(name)
        return fixed
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None


def load_model(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> LoadedModel:
    """Load a model file for export, on CPU.

    Args:
        path: TorchScript archive (``torch.jit.save``), ``torch.export`` archive (``torch.export.save``, ``.pt2``),
            or a whole module pickled with ``torch.save``.
        trust_pickle: allow loading a pickle. Unpickling runs arbitrary code from the file: only for files you
            trust.

    Returns:
        The module and what kind of file it came from.

    Raises:
        UnsafePickleError: a pickle, or an archive holding a pickle that is more than plain data, without
            ``trust_pickle``.
        ModelLoadError: missing, empty, corrupt or unrecognized file; a file that holds something other than a
            module; a trusted pickle naming code that cannot be imported (the message suggests ``PYTHONPATH``).
    """
    file = Path(path)
    kind = detect_model_kind(file)
    if kind != "pickle" and not trust_pickle:
        _refuse_unsafe_archive(file, kind)
    # Archives and pickles that call torch.ops.holocron.* need the ops registered before loading; a model without
    # holocron ops still loads where they are unavailable (one with them fails below with torch's message).
    with contextlib.suppress(ImportError):
        import holocron.ops  # noqa: F401  (registers torch.ops.holocron.*)
    if kind == "torch_export":
        return _load_torch_export(file)
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(file), map_location="cpu")
        except Exception as error:
            raise ModelLoadError(f"cannot load TorchScript archive {str(file)!r}: {summarize_error(error)}") from error
        return LoadedModel(module, kind, file)
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


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Switch ``model`` (and its submodules) to eval mode, restoring the caller's mode on exit.

    In eval mode BatchNorm uses running statistics, dropout and DropBlock are identities. The module of a
    ``torch.export`` archive has its mode fixed when it was exported (its ``eval()`` raises ``NotImplementedError``);
    it is used as it is.
    """
    if mode_is_fixed(model):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def mode_is_fixed(model: nn.Module) -> bool:
    """Whether ``model``'s train/eval mode cannot be changed (the module of a ``torch.export`` archive)."""
    try:
        model.train(model.training)
    except NotImplementedError:
        return True
    return False


def _check_shape(shape: Sequence[int], index: int) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"inputs[{index}] must be a tensor or a sequence of ints, got {shape!r}")
    dims = tuple(shape)
    if any(d < 1 for d in dims):
        raise ValueError(f"inputs[{index}] shape {dims} has a dimension below 1; every dimension must be >= 1")
    return dims


def make_inputs(
    specs: InputSpec | Sequence[InputSpec], *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, ...]:
    """Materialize input specs: tensors pass through, shapes become seeded ``N(0, 1)`` samples.

    The generator is seeded with ``seed``: the same seed gives the same tensors.

    Args:
        specs: one tensor or shape, or a sequence of them (one per model input).
        seed: seed of the random generator.
        dtype: dtype of the generated tensors.

    Returns:
        One tensor per spec.

    Raises:
        TypeError: a spec that is neither a tensor nor a sequence of ints (its index is named).
        ValueError: a shape with a dimension below 1 (its index is named).
    """
    if isinstance(specs, torch.Tensor):
        return (specs,)
    if not isinstance(specs, Sequence) or isinstance(specs, (str, bytes)) or len(specs) == 0:
        raise TypeError(f"inputs must be a tensor, or a non-empty sequence of tensors or shapes, got {specs!r}")
    if all(isinstance(s, int) and not isinstance(s, bool) for s in specs):
        specs = [specs]  # a single shape such as (1, 3, 32, 32)
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for index, spec in enumerate(specs):
        if isinstance(spec, torch.Tensor):
            tensors.append(spec)
        else:
            tensors.append(torch.randn(_check_shape(spec, index), generator=generator, dtype=dtype))
    return tuple(tensors)


def _positional_arity(model: nn.Module) -> tuple[int, int | None] | None:
    """(required, maximum) positional inputs of ``model.forward`` (maximum None for ``*args``), None if unknown."""
    if isinstance(model, torch.jit.ScriptModule):
        try:
            arguments = model.forward.schema.arguments[1:]  # drop self
        except (AttributeError, RuntimeError):
            return None
        required = sum(1 for arg in arguments if not arg.has_default_value())
        return required, len(arguments)
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    required = sum(1 for p in positional if p.default is p.empty)
    return required, len(positional)


def check_inputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Fail early, with a clear message, on inputs the model cannot take (run once in eval mode, without grad).

    Raises:
        ValueError: the number of inputs does not fit ``model.forward``, or the model rejects them.
    """
    arity = _positional_arity(model)
    if arity is not None:
        required, maximum = arity
        if not required <= len(inputs) <= (maximum if maximum is not None else len(inputs)):
            expected = str(required) if required == maximum else f"{required} to {maximum}"
            raise ValueError(f"the model takes {expected} input(s) but {len(inputs)} --input-shape value(s) were given")
    shapes = ", ".join(",".join(map(str, t.shape)) for t in inputs)
    try:
        with eval_mode(model), torch.no_grad():
            model(*inputs)
    except Exception as error:
        raise ValueError(f"the model rejects inputs of shape {shapes}: {summarize_error(error)}") from error


# --- Pickle safety: check every pickle of an archive without running any of it. ---


#: Nested zip archives deeper than this are refused (a torch archive nests one level: the sample inputs).
_MAX_DEPTH = 4
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80

_ALLOWED_EXACT = frozenset(
    {
        "builtins.set",
        "builtins.frozenset",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.slice",
        "_codecs.encode",
        "collections.OrderedDict",
        "collections.Counter",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "torch.serialization._get_layout",
        "torch.nn.parameter.Parameter",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch._tensor._rebuild_from_type_v2",
    }
)
_TORCH_DTYPE_AND_QSCHEME_NAMES = frozenset(
    {
        "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
        "float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128",
        "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
        "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
        "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric",
        "per_channel_affine_float_qparams",
    }
)  # fmt: skip


class PickleCheckError(Exception):
    """A pickle in the file names a global outside the allow-list (or cannot be checked).

    Args:
        member: where the pickle is (``archive/member``, nested members joined by ``!``).
        reason: what it asks for, e.g. ``imports builtins.open``.
    """

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"{member} {reason}")
        self.member = member
        self.reason = reason


def _allowed(module: str, name: str, torchscript: bool) -> bool:
    full = f"{module}.{name}"
    if full in _ALLOWED_EXACT:
        return True
    if module == "torch._utils" and name.startswith("_rebuild_"):
        return True
    if module in ("torch", "torch.cuda") and (name.endswith(("Storage", "Tensor")) and name.isidentifier()):
        return name[:1].isupper()
    if module in ("torch.sparse", "torch.cuda.sparse") and name.endswith("Tensor") and name[:1].isupper():
        return True
    if module == "torch" and name in _TORCH_DTYPE_AND_QSCHEME_NAMES:
        return True
    # TorchScript archives are read by torch's C++ unpickler, which never imports Python code; their pickles name
    # the scripted classes (__torch__.*) and TorchScript's list builders.
    return torchscript and (module == "__torch__" or module.startswith("__torch__.") or module == "torch.jit._pickle")


class _Inert:
    """What every allowed global and every persistent id becomes: accepts any call, state, item or attribute."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass

    def add(self, value: Any) -> None:
        pass


class _CheckingUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], member: str, torchscript: bool) -> None:
        super().__init__(file, encoding="bytes")
        self._member = member
        self._torchscript = torchscript

    def find_class(self, module: str, name: str) -> Any:
        if not _allowed(module, name, self._torchscript):
            raise PickleCheckError(self._member, f"imports {module}.{name}")
        return _Inert

    def persistent_load(self, pid: Any) -> Any:
        return _Inert()


def _parses_as_pickle(data: bytes) -> bool:
    """Whether ``data`` is a well-formed opcode stream up to a STOP (raw tensor bytes practically never are)."""
    try:
        for opcode, _, _ in pickletools.genops(data):
            if opcode.name == "STOP":
                return True
    except Exception:
        return False
    return False


def find_unsafe_global(data: bytes, member: str, *, torchscript: bool = False) -> None:
    """Unpickle ``data`` with inert placeholders; raise :class:`PickleCheckError` if it names a disallowed global.

    A stream that fails for another reason although it parses as a pickle is refused too (it could not be checked).
    """
    try:
        _CheckingUnpickler(io.BytesIO(data), member, torchscript).load()
    except PickleCheckError:
        raise
    except Exception as error:
        if _parses_as_pickle(data):
            raise PickleCheckError(member, f"cannot be checked ({type(error).__name__}: {error})") from error


def _check_zip(archive: zipfile.ZipFile, label: str, depth: int, torchscript: bool) -> None:
    for info in archive.infolist():
        if info.is_dir():
            continue
        member = f"{label}!{info.filename}" if depth else info.filename
        with archive.open(info) as handle:
            head = handle.read(4)
        is_zip = head.startswith(_ZIP_MAGIC)
        looks_pickled = info.filename.endswith(".pkl") or (len(head) >= 2 and head[0] == _PICKLE_PROTO)
        if not (is_zip or looks_pickled):
            continue
        data = archive.read(info)
        if is_zip:
            if depth + 1 > _MAX_DEPTH:
                raise PickleCheckError(member, "nests zip archives too deeply to be checked")
            try:
                nested = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile:
                continue  # raw bytes that start like a zip; torch does not open them as one
            with nested:
                _check_zip(nested, member, depth + 1, torchscript)
        else:
            find_unsafe_global(data, member, torchscript=torchscript)


def check_archive_pickles(path: str | Path, *, torchscript: bool = False) -> None:
    """Check every pickle in the zip archive at ``path``, nested archives included, without running any of them.

    Args:
        path: a TorchScript or ``torch.export`` archive.
        torchscript: also allow the names TorchScript archives use (``__torch__.*`` classes, ``torch.jit._pickle``).

    Raises:
        PickleCheckError: a pickle names a global outside the allow-list, or cannot be checked.
        zipfile.BadZipFile: ``path`` is not a readable zip archive.
    """
    with zipfile.ZipFile(path) as archive:
        _check_zip(archive, "", 0, torchscript)
