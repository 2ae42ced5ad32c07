"""Exceptions raised by ``holocron.export`` (the ground floor: it imports nothing of the package).

The command line turns these (and the ValueError/TypeError of bad arguments) into a one-line reason and a non-zero
exit status; anything else is a bug, still reported in one line, with the traceback available (``--traceback``).
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_INPUT_ELEMENTS",
    "ExportError",
    "InputSizeError",
    "ModelLoadError",
    "OutputExistsError",
    "OutputPathError",
    "UnsafePickleError",
    "root_cause",
    "summarize_error",
]


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


class OutputPathError(ExportError, ValueError):
    """An output path cannot be used whatever ``overwrite`` says: two outputs (or an output and an input) are the
    same file, or an output is a directory, device node, FIFO or socket. The command line exits 2 on it, before any
    work.

    Args:
        message: what is wrong, naming Python arguments.
        cli_message: the same naming the command line's flags.
    """


#: Largest element count of one input (int32 indexing in the exporters and the runtime): ``--input-shape``'s bound,
#: and that of every input built from a shape (an ARTIFACT's declared one, a ``--max-batch-size`` batch).
MAX_INPUT_ELEMENTS = 2**31 - 1


class InputSizeError(ExportError, ValueError):
    """An input would have more than :data:`MAX_INPUT_ELEMENTS` elements; found before anything is allocated. The
    command line exits 2 on it, naming the flag that sets the size."""


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
