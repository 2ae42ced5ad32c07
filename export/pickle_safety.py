"""Check, without running anything, that every pickle inside a MODEL archive is plain data.

``torch.export.load`` unpickles an archive's sample inputs (and pickled weights or constants) and, when torch's
weights-only unpickler refuses them, falls back to a full unpickler, which runs whatever a ``__reduce__`` payload
asks for. So before torch reads an untrusted archive, :func:`check_archive_pickles` walks every member (and the zip
archives nested in it, such as the ``torch.save`` file of the sample inputs) and unpickles each pickle with
:class:`_CheckingUnpickler`: it resolves no global at all. Names on the allow-list (tensor rebuild functions,
storages, dtypes, plain containers; TorchScript's own classes in a TorchScript archive) become inert placeholders;
any other name refuses the file. Nothing from the file is imported, called or built.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import IO, Any

__all__ = ["PickleCheckError", "check_archive_pickles", "find_unsafe_global"]

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
