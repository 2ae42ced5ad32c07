"""Output files: checked before any work, then written atomically.

A file is written to a temporary file in the destination folder and renamed into place, so a reader never sees a
half-written model, a crash leaves no partial file behind, and an existing file is only replaced when the caller says
so. Only regular files are ever replaced: a device node, FIFO, socket or directory at an output path is refused, with
or without ``overwrite``. A symbolic link at an output path is replaced by the new file (the rename replaces the link
itself); what it points to is never written.

A folder (a Triton model) is replaced the same way, as a whole, under a lock on its parent (:func:`folder_lock`): it
is assembled in a hidden staging folder beside it (:func:`staging_folder`), gets the entries it keeps of the old
folder as hard links, and two renames swap it in (:func:`swap_folder_into_place`); :func:`recover_folder` puts back
what a writer killed between them left.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .errors import OutputExistsError, OutputPathError

__all__ = [
    "MAX_FOLDER_NAME_BYTES",
    "atomic_output",
    "check_distinct",
    "check_outputs",
    "check_writable",
    "folder_lock",
    "recover_folder",
    "same_file",
    "staging_folder",
    "swap_folder_into_place",
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


def _same_pair(paths: Mapping[str, Path | None]) -> tuple[str, Path, str, Path] | None:
    """The first two labelled paths that are the same file (see :func:`same_file`), or None."""
    given = [(label, path) for label, path in paths.items() if path is not None]
    for index, (label, path) in enumerate(given):
        for other_label, other in given[index + 1 :]:
            if same_file(path, other):
                return label, path, other_label, other
    return None


def _same_file_message(pair: tuple[str, Path, str, Path], names: Mapping[str, str]) -> str:
    label, path, other_label, other = pair
    return (
        f"{names.get(other_label, other_label)} {str(other)!r} is the same file as {names.get(label, label)} "
        f"{str(path)!r}; choose another path"
    )


def check_distinct(paths: Mapping[str, Path | None]) -> None:
    """Check that no two of the named paths are the same file (see :func:`same_file`).

    Args:
        paths: label (used in the message, e.g. ``report_path``) -> path; None entries are skipped.

    Raises:
        ValueError: two paths are the same file; both labels are named.
    """
    pair = _same_pair(paths)
    if pair is not None:
        raise ValueError(_same_file_message(pair, {}))


def check_outputs(
    outputs: Mapping[str, Path | None],
    *,
    inputs: Mapping[str, Path | None] | None = None,
    overwrite: bool,
    cli_names: Mapping[str, str] | None = None,
) -> None:
    """Check the output paths of a run before any work: distinct from each other and from the inputs, and each a new
    path or a regular file (replaced only with ``overwrite``).

    Args:
        outputs: label (a Python argument name such as ``output``) -> path written; None entries are skipped.
        inputs: label -> path of a file read (``model_path``); None entries are skipped.
        overwrite: whether existing files may be replaced.
        cli_names: label -> the command line's name for it (``-o``, ``--report``, ``MODEL``), for the errors'
            ``cli_message``.

    Raises:
        OutputPathError: two of the paths are the same file (links and hard links included), or an output is a
            directory, device node, FIFO or socket (whatever ``overwrite`` says).
        OutputExistsError: an output exists and ``overwrite`` is False.
    """
    names = dict(cli_names or {})
    pair = _same_pair({**(inputs or {}), **outputs})
    if pair is not None:
        raise OutputPathError(_same_file_message(pair, {}), cli_message=_same_file_message(pair, names))
    for label, path in outputs.items():
        if path is None:
            continue
        try:
            check_writable(path, overwrite=overwrite)
        except OutputExistsError:
            raise
        except ValueError as error:
            raise OutputPathError(f"{label}: {error}", cli_message=f"{names.get(label, label)}: {error}") from None


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


#: Longest folder name :func:`swap_folder_into_place` handles: 255 bytes (the file systems' limit) less what the
#: hidden staging and retired names add (``.`` + ``.`` + 8 random characters + ``.old``).
MAX_FOLDER_NAME_BYTES = 255 - 14


def _hidden(name: str, suffix: str) -> re.Pattern[str]:
    """The names :func:`tempfile.mkdtemp` gives the hidden ``suffix`` folders of ``name`` (8 random characters)."""
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}" + re.escape(suffix))


@contextlib.contextmanager
def folder_lock(parent: Path) -> Iterator[None]:
    """Hold the exclusive lock of the folders in ``parent`` (``flock`` on ``parent`` itself: no lock file is left,
    and the lock is released when the process dies, so a killed writer never blocks the next one)."""
    descriptor = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def staging_folder(parent: Path, name: str) -> Iterator[Path]:
    """A new hidden folder ``parent/.name.<random>.tmp`` (mode from the umask), removed on exit."""
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".tmp"))
    try:
        mask = os.umask(0)
        os.umask(mask)
        staging.chmod(0o777 & ~mask)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _entries(folder: Path) -> set[str]:
    return set() if folder.is_symlink() or not folder.is_dir() else {entry.name for entry in folder.iterdir()}


def recover_folder(parent: Path, name: str, *, counts: Callable[[str], bool] = lambda entry: True) -> None:
    """Put back, or clear, what a writer of ``parent/name`` killed during its swap left; hold :func:`folder_lock`.

    A retired ``.name.<random>.old`` folder goes back in place when the folder is missing (the writer died between
    its two renames); it is removed when every entry of it that ``counts`` is also in the folder (it died after the
    swap). Staging folders are removed: they are never the only copy of anything.

    Raises:
        ValueError: a retired folder holds counted entries the folder lacks (it is named and left in place).
    """
    folder = parent / name
    found = [entry for entry in parent.iterdir() if _hidden(name, ".tmp").fullmatch(entry.name)]
    for leftover in found:
        shutil.rmtree(leftover, ignore_errors=True)
    retired = sorted(entry for entry in parent.iterdir() if _hidden(name, ".old").fullmatch(entry.name))
    if not retired:
        return
    if not (folder.is_symlink() or folder.exists()) and len(retired) == 1:
        os.rename(retired[0], folder)
        return
    present = _entries(folder)
    for old in retired:
        if old.is_symlink() or not old.is_dir():
            old.unlink()  # a retired symlink: what it pointed to was never in the repository
            continue
        missing = sorted(entry for entry in _entries(old) - present if counts(entry))
        if missing:
            raise ValueError(
                f"{str(old)!r}, left by an interrupted writer, holds {', '.join(missing)} that {str(folder)!r} "
                "lacks; move them back into that folder (or remove it), then retry"
            )
        shutil.rmtree(old)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copy2(source, target)


def swap_folder_into_place(staging: Path, folder: Path, *, keep: Callable[[str], bool]) -> None:
    """Replace ``folder`` by ``staging``, carrying over the entries of the old folder that ``keep`` selects (and that
    ``staging`` lacks) as hard links (copies where the file system has none); hold :func:`folder_lock`.

    The old folder is never changed before it is retired, so a failure at any step leaves it whole: in place, or as
    ``.name.<random>.old`` between the two renames, which :func:`recover_folder` puts back. A symlink at ``folder``
    is replaced, never followed.
    """
    if not (folder.is_symlink() or folder.exists()):
        os.rename(staging, folder)
        return
    for entry in sorted(_entries(folder) - _entries(staging)):
        if keep(entry) and (folder / entry).is_dir() and not (folder / entry).is_symlink():
            shutil.copytree(folder / entry, staging / entry, symlinks=True, copy_function=_link_or_copy)
    retired = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
    retired.rmdir()
    os.rename(folder, retired)
    os.rename(staging, folder)
    if retired.is_symlink() or not retired.is_dir():
        retired.unlink()
    else:
        shutil.rmtree(retired)
