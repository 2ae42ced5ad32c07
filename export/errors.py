"""Exceptions raised by ``holocron.export``, and the default tolerances that decide a verification failure.

The command line turns these (and the ValueError/TypeError of bad arguments) into a one-line reason and a non-zero
exit status; anything else is a bug, still reported in one line, with the traceback available (``--traceback``).
This module imports no heavy library, so the command line reads the defaults while parsing its arguments.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .verification import VerificationReport

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "ExportError",
    "ModelLoadError",
    "OutputExistsError",
    "UnsafePickleError",
    "VerificationFailedError",
    "root_cause",
    "summarize_error",
]

#: Default absolute tolerance of the verification: an output element passes when
#: ``|exported - eager| <= atol + rtol * |eager|``.
DEFAULT_ATOL = 1e-5
#: Default relative tolerance of the verification (see :data:`DEFAULT_ATOL`).
DEFAULT_RTOL = 1e-4


class ExportError(RuntimeError):
    """An export could not be completed (bad argument, unsupported model, exporter failure).

    Args:
        message: what went wrong, naming Python arguments where one is at fault.
        cli_message: the same for the command line, naming its flags instead (``--force`` for ``overwrite``);
            None when ``message`` names no argument.
    """

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class ModelLoadError(ExportError):
    """A MODEL file is missing, corrupt, of an unknown kind, or refused (pickle without trust)."""


class UnsafePickleError(ModelLoadError):
    """A MODEL file holds a pickle that would run code (or import a module) when loaded, and was not trusted."""


class OutputExistsError(ExportError, FileExistsError):
    """The output file already exists and overwriting was not allowed.

    Args:
        message: what went wrong (naming ``overwrite``).
        cli_message: the same naming ``--force``.
        path: the existing output.
    """

    def __init__(self, message: str, *, cli_message: str | None = None, path: object = None) -> None:
        super().__init__(message, cli_message=cli_message)
        self.path = path


class VerificationFailedError(ExportError):
    """The exported model does not match eager PyTorch within tolerance.

    Args:
        message: one-line summary of the failing outputs.
        report: the full verification report.
    """

    def __init__(self, message: str, report: VerificationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of ``error``'s ``raise ... from`` chain (where wrapped library errors start)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def summarize_error(error: BaseException) -> str:
    """One line saying what went wrong in ``error``, for messages that wrap a library's exception.

    Most exceptions state the problem on their first line. TorchScript interpreter errors start with a generic line
    and two tracebacks and end with the actual error, so the last line is taken for them.
    """
    text = _ANSI_ESCAPE.sub("", str(error))
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if "TorchScript interpreter" in lines[0] or any(line.startswith("Traceback of TorchScript") for line in lines):
        return lines[-1]
    return lines[0]
