"""Where holocron's onnxruntime custom-op library is, and whether it was built.

When it is missing, the message fits how holocron was installed: from a checkout (editable install), built from
source by pip (an sdist or a source folder), or from a prebuilt wheel.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

from holocron._package_files import packaged_file

__all__ = ["LIBRARY_ENV", "RuntimeNotBuiltError", "is_available", "library_path"]

#: Environment variable naming a library file to use instead of the installed one (a development build, say).
LIBRARY_ENV = "HOLOCRON_RUNTIME_LIBRARY"

# The file names CMake gives the library (a MODULE target named holocron_ort) on Linux/macOS and on Windows.
_LIBRARY_NAMES = ("libholocron_ort.so", "libholocron_ort.dylib", "holocron_ort.dll")

# What any kind of install may do instead.
_OVERRIDE_HINT = f"or point {LIBRARY_ENV} at a built library file"

_HEADERS_HINT = (
    "a C++17 compiler (GCC or Clang), CMake >= 3.20 and ONNXRUNTIME_INCLUDE_DIR set to a folder holding "
    "onnxruntime_c_api.h and onnxruntime_lite_custom_op.h (the include/ folder of onnxruntime's release archive, or "
    "Debian's libonnxruntime-dev)"
)


def _checkout_message(root: Path) -> str:
    return (
        f"holocron runs from the checkout {root}: there `make setup` fetches the onnxruntime headers and builds the "
        "library into the editable install (by hand: `ONNXRUNTIME_INCLUDE_DIR=$(scripts/fetch_ort_headers.sh) pip "
        f"install -e .`; without a C++ compiler or the headers the build skips it); {_OVERRIDE_HINT}."
    )


def _source_build_message(origin: str) -> str:
    return (
        f"holocron was built from source when pip installed it ({origin}), and that build skipped the kernel "
        f"library (`pip install -v` prints why). Reinstall with {_HEADERS_HINT}: "
        f"`ONNXRUNTIME_INCLUDE_DIR=<that folder> pip install --force-reinstall --no-deps {origin}`; or install a "
        f"prebuilt holocron wheel, which carries the library; {_OVERRIDE_HINT}."
    )


def _wheel_message(origin: str) -> str:
    return (
        f"the installed holocron wheel ({origin}) carries no kernel library: it was built where {_HEADERS_HINT} "
        "were missing, or the library file was removed. Reinstall a wheel that has it (`make wheel` in a checkout "
        "builds one and auditwheel lists holocron/runtime/libholocron_ort.so in it) with `pip install "
        f"--force-reinstall --no-deps <wheel>`; {_OVERRIDE_HINT}."
    )


def _installed_distribution() -> importlib.metadata.Distribution | None:
    """The installed distribution this file belongs to (``None`` when it is not one's, a source tree say)."""
    here = Path(__file__).resolve()
    try:
        dist = importlib.metadata.distribution("holocron")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == here.name and Path(str(dist.locate_file(file))).resolve() == here:
            return dist
    return None


def _missing_library_message() -> str:
    """Why the library is missing and what to do, for the way this copy of holocron was installed."""
    here = Path(__file__).resolve().parent
    if (here / "src").is_dir() and (here / "CMakeLists.txt").is_file():
        return _checkout_message(here.parent)  # the repository's runtime/ folder: an editable install or a checkout
    dist = _installed_distribution()
    if dist is None:
        return f"holocron's files in {here} are not a pip-installed package: reinstall holocron; {_OVERRIDE_HINT}."
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    url = str(direct_url.get("url", ""))
    origin = url.removeprefix("file://") or "holocron"
    if url.endswith(".whl"):
        return _wheel_message(origin)
    if url or "dir_info" in direct_url:
        return _source_build_message(origin)  # an sdist archive or a source folder
    # From an index: a wheel tagged for a platform policy (manylinux, macosx, win) was prebuilt; a plain linux tag
    # is pip's own build of the sdist on this machine.
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    if any(not tag.rsplit("-", 1)[-1].startswith("linux_") for tag in tags):
        return _wheel_message(f"holocron {dist.version}, {', '.join(tags)}")
    return _source_build_message(f"holocron=={dist.version}")


class RuntimeNotBuiltError(FileNotFoundError):
    """holocron's custom-op library is not installed (the package was built without a compiler or headers)."""


def library_path() -> str:
    """Path of the onnxruntime custom-op library registering the ``holocron`` domain.

    The library ships inside the ``holocron.runtime`` package (normal and editable installs); the environment
    variable ``HOLOCRON_RUNTIME_LIBRARY`` overrides it.

    Returns:
        The library file's absolute path as a ``str`` (a relative override is taken from the working directory), as
        ``onnxruntime.SessionOptions.register_custom_ops_library`` takes it:
        ``options.register_custom_ops_library(holocron.runtime.library_path())``.

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to get it, for the way holocron was
            installed (checkout, source build or wheel).
    """
    override = os.environ.get(LIBRARY_ENV)
    installed = packaged_file(__package__ or "holocron.runtime", _LIBRARY_NAMES)
    if override:
        if not Path(override).is_file():
            fix = (
                f"point it at a built libholocron_ort.so, or unset it to use the installed one, {installed}"
                if installed
                else f"and no library is installed either: {_missing_library_message()}"
            )
            raise RuntimeNotBuiltError(f"{LIBRARY_ENV}={override!r} is not a file; {fix}")
        # Absolute: given a bare file name, dlopen would search the system folders instead of the working directory.
        return os.path.abspath(override)
    if installed is None:
        raise RuntimeNotBuiltError(
            f"holocron's onnxruntime custom-op library is not installed: {_missing_library_message()}"
        )
    return installed


def is_available() -> bool:
    """Whether :func:`library_path` finds the custom-op library."""
    try:
        library_path()
    except RuntimeNotBuiltError:
        return False
    return True
