"""What a model archive may hold before torch reads it untrusted: checks that run nothing and read in bounded memory.

The trust model (README, "Safety"): without ``trust_pickle`` / ``--trust-pickle``,

* every pickle is read by torch's own restricted unpickler (``weights_only``), the one that really loads it:
  :func:`weights_only_loads` forces it for every ``torch.load`` torch makes while loading (torch's
  ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` switch, set for the duration of the load only). There is no second parser of
  pickles that could disagree with the loader;
* what torch would read without ``torch.load`` is refused here first (:func:`check_archive`): a ``.pt2`` archive's
  opaque constants (plain ``pickle.loads``), TorchBind objects, AOTInductor native code, guard code and any symbolic
  shape that is more than symbols, numbers, arithmetic and sympy's shape functions (torch evaluates them with
  ``sympy.sympify``); a TorchScript archive that defines ``__setstate__`` (TorchScript that runs during
  ``torch.jit.load``, before its graph can be checked) or names a TorchBind class;
* a member that this check cannot read (encrypted, an unknown compression, a corrupt or duplicated entry, a zip
  archive nested in a member that Python's zip reader rejects) refuses the file, since torch may still read it;
* a compressed member and a JSON member may expand to :data:`MAX_MEMBER_BYTES` at most: the check streams
  members (nested zip archives too) in :data:`_CHUNK` pieces and holds at most one JSON member whole.

The graphs themselves (TorchScript methods, ``torch.export`` programs) are checked after loading and before they
run, by :mod:`~holocron.export.model.graphs`.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

__all__ = ["MAX_MEMBER_BYTES", "ArchiveCheckError", "check_archive", "weights_only_loads"]

#: Largest size a compressed member, a JSON member or a nested zip archive may have once expanded (torch writes its
#: tensors uncompressed, so a genuine archive's large members are stored as they are).
MAX_MEMBER_BYTES = 64 << 20
_CHUNK = 1 << 20
#: Zip archives nested deeper than this are refused (torch nests one level: a ``torch.save`` file in a ``.pt2``).
_MAX_DEPTH = 2
_ZIP_MAGIC = b"PK\x03\x04"
_SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: Byte strings whose presence in a TorchScript archive means code that runs during ``torch.jit.load``.
_TORCHSCRIPT_LOAD_CODE = {b"__setstate__": "defines __setstate__", b"torch.classes": "uses a TorchBind class"}
_FORCE_SWITCH, _NO_FORCE_SWITCH = "TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"

ArchiveKind = Literal["torchscript", "torch_export"]


class ArchiveCheckError(Exception):
    """A member of the archive could run code when torch loads it, or cannot be checked.

    Args:
        member: the member (nested members joined by ``!``).
        reason: what it holds, e.g. ``defines __setstate__``.
    """

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"{member} {reason}")
        self.member = member
        self.reason = reason


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Within the block, every ``torch.load`` (torch's own, made while loading an archive, included) uses torch's
    restricted unpickler; the environment is restored afterwards. Not safe to use from several threads at once."""
    saved = {name: os.environ.get(name) for name in (_FORCE_SWITCH, _NO_FORCE_SWITCH)}
    os.environ[_FORCE_SWITCH] = "1"
    os.environ.pop(_NO_FORCE_SWITCH, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stored_name(info: zipfile.ZipInfo) -> str:
    """The member's name inside the archive's top folder (torch's readers drop that folder)."""
    return info.filename.partition("/")[2] if "/" in info.filename else info.filename


def _members(archive: zipfile.ZipFile, label: str, limit: int) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every file member with its label; refuses what this check cannot read as torch would."""
    seen: set[str] = set()
    found = []
    for info in archive.infolist():
        member = f"{label}!{info.filename}" if label else info.filename
        if info.filename in seen:
            raise ArchiveCheckError(member, "appears twice in the archive, so it cannot be checked")
        seen.add(info.filename)
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise ArchiveCheckError(member, "is encrypted, so it cannot be checked")
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            raise ArchiveCheckError(member, f"uses zip compression method {info.compress_type}, which is not checked")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_MEMBER_BYTES:
            raise ArchiveCheckError(
                member, f"is a compressed member expanding to {info.file_size} bytes, more than {MAX_MEMBER_BYTES}"
            )
        if info.compress_size > limit or (info.compress_type == zipfile.ZIP_STORED and info.file_size > limit):
            raise ArchiveCheckError(member, "claims more bytes than the archive holds")
        found.append((info, member))
    return found


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str) -> Iterator[bytes]:
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        raise ArchiveCheckError(member, f"cannot be read ({type(error).__name__}: {error})") from error


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str, what: str) -> bytes:
    if info.file_size > MAX_MEMBER_BYTES:
        raise ArchiveCheckError(member, f"is {what} of {info.file_size} bytes, more than {MAX_MEMBER_BYTES}")
    return b"".join(_chunks(archive, info, member))


def _scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str, needles: dict[bytes, str]) -> bytes:
    """Stream the member looking for ``needles`` (across chunk boundaries); returns its first 4 bytes."""
    overlap = max(len(needle) for needle in needles) - 1 if needles else 0
    tail, head = b"", b""
    for chunk in _chunks(archive, info, member):
        window = tail + chunk
        head = head or window[:4]
        for needle, reason in needles.items():
            if needle in window:
                raise ArchiveCheckError(member, reason)
        tail = window[-overlap:] if overlap else b""
    return head


# --- what torch evaluates as Python: sympy expressions (sympify) ----------------------------------------------

#: Functions a serialized shape expression may call: sympy's number and symbol constructors and the shape functions
#: torch's deserializer passes to sympify.
_SYMPY_CALLS = frozenset(
    {
        "Symbol", "Integer", "Rational", "Float", "Max", "Min", "Abs", "Mod", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
        "And", "Or", "Not", "floor", "ceiling", "sqrt", "FloorDiv", "ModularIndexing", "Where", "PythonMod",
        "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow",
        "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt",
        "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
    }
)  # fmt: skip
_SYMPY_NAMES = frozenset({"oo", "zoo", "nan", "pi", "E", "I", "S", "true", "false"})
_SAFE_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.operator, ast.unaryop, ast.boolop,
    ast.cmpop, ast.keyword, ast.Load,
)  # fmt: skip


def _symbol_name(name: str) -> bool:
    """torch's symbol names: a few lowercase letters then digits (``s77``, ``u0``, ``ps1``)."""
    stem = name.rstrip("0123456789")
    return stem != name and stem.isalpha() and stem.islower() and len(stem) <= 8


def check_sympy_expression(text: str) -> None:
    """Raise ``ValueError`` unless ``text`` is a plain shape expression (nothing sympify would evaluate as code)."""
    if len(text) > 100_000:
        raise ValueError("is longer than 100000 characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"is not a plain expression ({error.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, _SAFE_NODES):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str)):
            if isinstance(node.value, str) and not (_symbol_name(node.value) or node.value.isdigit()):
                raise ValueError(f"holds the string {node.value[:40]!r}")
            continue
        if isinstance(node, ast.Name) and (node.id in _SYMPY_CALLS or node.id in _SYMPY_NAMES or _symbol_name(node.id)):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS:
            continue
        raise ValueError(f"holds {type(node).__name__} {ast.unparse(node)[:60]!r}")


def _walk_json(value: Any, member: str) -> None:
    """Refuse the JSON parts torch would evaluate: shape expressions that are more than arithmetic, guard code."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if key == "expr_str" and isinstance(inner, str):
                    try:
                        check_sympy_expression(inner)
                    except ValueError as error:
                        raise ArchiveCheckError(member, f"has a shape expression that {error}") from None
                elif key == "guards_code" and inner:
                    raise ArchiveCheckError(member, "carries guard code, Python that runs when the program does")
                else:
                    stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def _torch_export_refusal(name: str) -> str | None:
    """Why torch would read member ``name`` of a ``.pt2`` archive without its restricted unpickler (None: it
    would not)."""
    from torch.export.pt2_archive import constants

    if name.startswith(constants.AOTINDUCTOR_DIR):
        return "is AOTInductor native code, which loading runs"
    if name.startswith(constants.CONSTANTS_DIR):
        base = name[len(constants.CONSTANTS_DIR) :]
        if base.startswith(constants.OPAQUE_OBJ_FILENAME_PREFIX):
            return "is an opaque object, which torch unpickles without restriction"
        if base.startswith(constants.CUSTOM_OBJ_FILENAME_PREFIX):
            return "is a TorchBind object, whose C++ class runs when loaded"
    return None


def _check_zip(archive: zipfile.ZipFile, label: str, depth: int, kind: ArchiveKind, limit: int) -> None:
    for info, member in _members(archive, label, limit):
        name = _stored_name(info)
        if kind == "torch_export" and depth == 0:
            refusal = _torch_export_refusal(name)
            if refusal is not None:
                raise ArchiveCheckError(member, refusal)
            if name.endswith(".json") or name.startswith("models/"):
                data = _read_bounded(archive, info, member, "a JSON member")
                try:
                    parsed = json.loads(data)
                except (ValueError, RecursionError) as error:
                    raise ArchiveCheckError(member, f"is not valid JSON ({error})") from None
                _walk_json(parsed, member)
                continue
        needles = _TORCHSCRIPT_LOAD_CODE if kind == "torchscript" else {}
        head = _scan(archive, info, member, needles)
        if head.startswith(_ZIP_MAGIC):
            _check_nested(archive, info, member, depth, kind)


def _check_nested(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str, depth: int, kind: ArchiveKind) -> None:
    """A member that is itself a zip archive (``torch.load`` reads it): readable, and checked like the outer one,
    read through the outer member's stream (a compressed one expands to :data:`MAX_MEMBER_BYTES` at most)."""
    if depth + 1 > _MAX_DEPTH:
        raise ArchiveCheckError(member, "nests zip archives too deeply to be checked")
    try:
        with archive.open(info) as stream, zipfile.ZipFile(stream) as nested:
            _check_zip(nested, member, depth + 1, kind, info.file_size)
    except ArchiveCheckError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as error:
        raise ArchiveCheckError(member, f"starts like a zip archive but cannot be read as one ({error})") from None


def check_archive(path: str | os.PathLike[str], kind: ArchiveKind) -> None:
    """Check, running nothing and streaming every member, that torch may load the archive at ``path`` untrusted.

    Args:
        path: a TorchScript archive (``torchscript``) or a ``torch.export`` archive (``torch_export``).
        kind: which of the two it is.

    Raises:
        ArchiveCheckError: a member torch would run or read without its restricted unpickler, or one this check
            cannot read (see the module docstring).
        zipfile.BadZipFile: ``path`` is not a readable zip archive.
    """
    file = Path(path)
    with zipfile.ZipFile(file) as archive:
        _check_zip(archive, "", 0, kind, file.stat().st_size)
