"""Exceptions raised by ``holocron.export``.

Every failure the command line reports is one of these, so ``holocron-export`` can print a one-line reason and exit
non-zero without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["ExportError", "ModelLoadError", "OutputExistsError", "VerificationFailedError"]


class ExportError(RuntimeError):
    """An export could not be completed (bad argument, unsupported model, exporter failure)."""


class ModelLoadError(ExportError):
    """A MODEL file is missing, corrupt, of an unknown kind, or refused (pickle without trust)."""


class OutputExistsError(ExportError, FileExistsError):
    """The output file already exists and overwriting was not allowed."""


class VerificationFailedError(ExportError):
    """The exported model does not match eager PyTorch within tolerance."""
