"""Upstream holocron (the ``pylocron`` distribution) beside this package.

Both distributions install a top-level package named ``holocron``. This one provides ``holocron.nn`` (upstream's
layers, deployable), ``holocron.ops`` (its custom ops), ``holocron.export`` and ``holocron.runtime``; upstream's other
sub-packages (``models``, ``trainer``, ``optim``, ``transforms``, ``utils``, ``ops.boxes``) are not part of it. When
upstream's code is installed *beside* this package, in another folder, those sub-packages are reached there, while
``holocron.nn`` stays ours: upstream's model zoo then runs on these layers. Upstream's folder is

- ``HOLOCRON_UPSTREAM_PATH``, when set: a folder holding upstream's ``holocron`` package, such as the one
  ``pip install --no-deps --target DIR pylocron`` makes;
- otherwise the folder of an installed ``pylocron`` distribution (e.g. upstream installed in the environment and this
  package installed in editable mode).

Installed into the *same* folder, the two distributions overwrite each other's files (pip reports nothing), so the
package is a mix of both: importing it then raises an ``ImportError`` that says how to separate them.
"""

from __future__ import annotations

import importlib.metadata
import os

__all__ = ["UPSTREAM_ENV", "UpstreamInstallError", "extend_path", "upstream_package_dir"]

#: Environment variable naming the folder that holds upstream's ``holocron`` package.
UPSTREAM_ENV = "HOLOCRON_UPSTREAM_PATH"
_DISTRIBUTION = "pylocron"
_HERE = os.path.dirname(os.path.abspath(__file__))


class UpstreamInstallError(ImportError):
    """This package and upstream's were installed into the same folder."""


def _same(path_a: str, path_b: str) -> bool:
    return os.path.realpath(path_a) == os.path.realpath(path_b)


def upstream_package_dir() -> str | None:
    """Upstream's ``holocron`` folder beside this package, or ``None``.

    Raises:
        UpstreamInstallError: if upstream's distribution is installed in the folder that holds this package
        ValueError: if ``HOLOCRON_UPSTREAM_PATH`` is set to a folder without upstream's ``holocron`` package
    """
    root = os.environ.get(UPSTREAM_ENV)
    if root:
        package = os.path.join(root, "holocron")
        if not os.path.isfile(os.path.join(package, "__init__.py")):
            raise ValueError(
                f"{UPSTREAM_ENV}={root!r} is expected to name a folder holding upstream's `holocron` package (as made "
                f"by `pip install --no-deps --target DIR {_DISTRIBUTION}`), but {package} has no __init__.py"
            )
        if _same(package, _HERE):
            raise ValueError(f"{UPSTREAM_ENV}={root!r} names the folder of this package, not upstream's")
        return package
    try:
        distribution = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    package = str(distribution.locate_file("holocron"))
    if _same(package, _HERE):
        raise UpstreamInstallError(
            f"holocron and upstream holocron ({_DISTRIBUTION} {distribution.version}) are installed in the same folder"
            f" {os.path.dirname(_HERE)}: both install the package folder `holocron/`, so each overwrote the other's "
            f"files and the package is now a mix of the two. Uninstall both (`pip uninstall -y holocron "
            f"{_DISTRIBUTION}`) and reinstall holocron; to run upstream's models or trainer on holocron's layers, "
            f"install upstream beside it instead: `pip install --no-deps --target DIR {_DISTRIBUTION}` and set "
            f"{UPSTREAM_ENV}=DIR."
        )
    return package if os.path.isdir(package) else None


def extend_path(path: list[str], subpackage: str = "") -> None:
    """Append upstream's folder of ``holocron.<subpackage>`` to a package's ``__path__``, after ours."""
    package = upstream_package_dir()
    if package is None:
        return
    folder = os.path.join(package, *subpackage.split(".")) if subpackage else package
    if os.path.isdir(folder) and not any(_same(folder, entry) for entry in path):
        path.append(folder)
