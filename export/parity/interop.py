"""Holocron's kernels in the verification tools users already run.

* ``torch.onnx.verification.verify_onnx_program`` runs an ``ONNXProgram`` in the session that
  ``ONNXProgram.initialize_inference_session(initializer)`` opened; its default initializer knows nothing of the
  ``holocron`` domain. :func:`session_initializer` returns one that opens the session with holocron's custom-op
  library registered::

      program = torch.onnx.export(model, (x,), dynamo=True, custom_translation_table=...)
      program.initialize_inference_session(holocron.export.session_initializer())
      infos = torch.onnx.verification.verify_onnx_program(program, (x,))

* Polygraphy: :mod:`~holocron.export.parity.polygraphy_plugin` registers a ``polygraphy run`` runner
  (``--holocron-onnxrt``) through Polygraphy's ``polygraphy.run.plugins`` entry point.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from holocron import runtime

from .session import check_providers

__all__ = ["session_initializer"]


def session_initializer(
    *, use_kernels: bool = True, providers: Sequence[Any] | None = None
) -> Callable[[str | bytes], Any]:
    """A function opening an onnxruntime session with holocron's kernels, for
    ``ONNXProgram.initialize_inference_session`` (what ``torch.onnx.verification.verify_onnx_program`` runs).

    Args:
        use_kernels: True requires holocron's custom-op library (built with ``pip install``), False opens a plain
            session (the ``holocron`` nodes then run their standard-ONNX fallback functions).
        providers: onnxruntime execution providers in order of preference (default CPU); each must be available.

    Returns:
        ``initializer(model) -> onnxruntime.InferenceSession``, where ``model`` is a serialized model or a path.

    Raises:
        ValueError: a provider is not available.
        TypeError: ``use_kernels`` is not a bool.
        holocron.runtime.RuntimeNotBuiltError: ``use_kernels=True`` but the library is not built.
    """
    if not isinstance(use_kernels, bool):
        raise TypeError(f"use_kernels must be True or False, got {use_kernels!r}")
    checked = check_providers(providers)
    if use_kernels and not runtime.is_available():
        raise runtime.RuntimeNotBuiltError("use_kernels=True but holocron.runtime's custom-op library is not built")

    def initialize(model: str | bytes | os.PathLike[str]) -> Any:
        session, _ = runtime.create_session(model, use_kernels=use_kernels, providers=checked)
        return session

    return initialize
