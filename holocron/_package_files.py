"""Files shipped inside a package of this distribution (the native libraries), found the same way for each."""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

__all__ = ["packaged_file"]


def packaged_file(package: str, names: Sequence[str]) -> str | None:
    """The first of ``names`` that is a file inside ``package`` (an importable package name), or ``None``.

    Args:
        package: the package holding the file, e.g. ``"holocron.runtime"``.
        names: the file names to look for, in order (the platform variants of one library's name).

    Returns:
        The file's path (a real path: the packages are installed as folders), or ``None`` when none is there.
    """
    folder = importlib.resources.files(package)
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return str(Path(str(candidate)))
    return None
