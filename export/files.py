"""Output files: checked before any work, then written atomically.

A file is written to a temporary file in the destination folder and renamed into place, so a reader never sees a
half-written model, a crash leaves no partial file behind, and an existing file is only replaced when the caller says
so. Only regular files are ever replaced: a device node, FIFO, socket or directory at an output path is refused, with
or without ``overwrite``. A symbolic link at an output path is replaced by the new file (the rename replaces the link
itself); what it points to is never written.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputExistsError

__all__ = [
    "atomic_output",
    "check_distinct",
    "check_outputs",
    "check_writable",
    "same_file",
    "write_bytes_atomically",
]


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_writable(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check, before any expensive work, that ``path`` may be written.

    ``path`` may be a new path, an existing regular file (replaced only with ``overwrite``) or a symbolic link
    (replaced itself, only with ``overwrite``; its target is left alone).

    Args:
        path: destination file.
        overwrite: whether an existing file may be replaced.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: ``path`` is a directory, a device node, a FIFO or a socket (whatever ``overwrite`` says).
    """
    target = Path(path)
    try:
        info = target.lstat()
    except FileNotFoundError:
        return target
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        raise ValueError(
            f"output path {str(target)!r} is {_kind_of(info.st_mode)}; only a regular file or a new path can be "
            "written (special files are never replaced)"
        )
    if not overwrite:
        what = "is a symbolic link" if stat.S_ISLNK(info.st_mode) else "already exists"
        raise OutputExistsError(
            f"output {str(target)!r} {what}; pass overwrite=True to replace it",
            cli_message=f"output {str(target)!r} {what}; pass --force to replace it",
            path=target,
        )
    return target


def same_file(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file: same resolved path (symbolic links followed) or same inode."""
    a, b = Path(first), Path(second)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_distinct(paths: dict[str, Path | None]) -> None:
    """Check that no two of the named paths are the same file (see :func:`same_file`).

    Args:
        paths: label (used in the message, e.g. ``report_path``) -> path; None entries are skipped.

    Raises:
        ValueError: two paths are the same file; both labels are named.
    """
    given = [(label, path) for label, path in paths.items() if path is not None]
    for index, (label, path) in enumerate(given):
        for other_label, other in given[index + 1 :]:
            if same_file(path, other):
                raise ValueError(
                    f"{other_label} {str(other)!r} is the same file as {label} {str(path)!r}; choose another path"
                )


def check_outputs(output: Path, *, report: Path | None = None, model: Path | None = None, overwrite: bool) -> None:
    """Check the output (and report) paths of an export before any work.

    Args:
        output: the exported model's destination.
        report: the JSON report's destination, if any.
        model: the model file being exported, if any; neither output may be that file.
        overwrite: whether existing files may be replaced.

    Raises:
        ValueError: two of ``model``, ``output`` and ``report`` are the same file, or an output path is a directory,
            a device node, a FIFO or a socket.
        OutputExistsError: a path exists and ``overwrite`` is False.
    """
    check_distinct({"model_path": model, "output": output, "report_path": report})
    check_writable(output, overwrite=overwrite)
    if report is not None:
        check_writable(report, overwrite=overwrite)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on failure delete it.

    Args:
        path: final destination.
        overwrite: whether an existing file (or symbolic link, replaced itself) may be replaced.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before and again at rename time).
        ValueError: ``path`` is a special file (checked before and again at rename time).
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
        check_writable(target, overwrite=overwrite)
        os.replace(tmp, target)  # replaces a symbolic link itself, never its target
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes, *, overwrite: bool) -> Path:
    """Write ``data`` to ``path`` atomically; see :func:`atomic_output`."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)
