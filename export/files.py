"""Output files: checked before any work, then written atomically.

A file is written to a temporary file in the destination folder and renamed into place, so a reader never sees a
half-written model, a crash leaves no partial file behind, and an existing file is only replaced when the caller says
so.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputExistsError

__all__ = ["atomic_output", "check_outputs", "check_writable", "write_bytes_atomically"]


def check_writable(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check, before any expensive work, that ``path`` may be written.

    Args:
        path: destination file.
        overwrite: whether an existing file may be replaced.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: ``path`` is a directory.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"output path {str(target)!r} is a directory; expected a file path")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"output {str(target)!r} already exists; pass overwrite=True (--force) to replace it")
    return target


def check_outputs(output: Path, *, report: Path | None = None, model: Path | None = None, overwrite: bool) -> None:
    """Check the output (and report) paths of an export before any work.

    Args:
        output: the exported model's destination.
        report: the JSON report's destination, if any.
        model: the model file being exported, if any; the output must not be that file.
        overwrite: whether existing files may be replaced.

    Raises:
        ValueError: ``output`` is ``model`` itself, or a path is a directory.
        OutputExistsError: a path exists and ``overwrite`` is False.
    """
    if model is not None and output.resolve() == model.resolve():
        raise ValueError(f"the output path {str(output)!r} is the MODEL file itself; choose another with -o")
    check_writable(output, overwrite=overwrite)
    if report is not None:
        check_writable(report, overwrite=overwrite)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on failure delete it.

    Args:
        path: final destination.
        overwrite: whether an existing file may be replaced.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before and again at rename time).
    """
    target = check_writable(path, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file 0600; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        if not overwrite and target.exists():
            raise OutputExistsError(f"output {str(target)!r} appeared while writing; not replaced")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes, *, overwrite: bool) -> Path:
    """Write ``data`` to ``path`` atomically; see :func:`atomic_output`."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)
