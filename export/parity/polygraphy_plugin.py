"""A ``polygraphy run`` runner on onnxruntime with holocron's kernels: ``--holocron-onnxrt``.

Polygraphy's own ``--onnxrt`` runner opens a plain session (its ``SessionFromOnnx`` loader takes no custom-op
library), so on a model with ``holocron`` nodes it runs their standard-ONNX fallback functions. Polygraphy loads
extensions of ``polygraphy run`` from the ``polygraphy.run.plugins`` entry point group, each returning argument
groups; holocron's package declares :func:`export_argument_groups` there, which adds the runner::

    polygraphy run model.onnx --holocron-onnxrt            # holocron's kernels
    polygraphy run model.onnx --holocron-onnxrt --onnxrt   # kernels against the fallback functions

The runner reuses ``polygraphy run``'s ``--providers`` (exact or partial names, as for ``--onnxrt``). Needs the
``polygraphy`` package (imported only when Polygraphy loads the plugin).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from polygraphy.backend.base import BaseLoader
from polygraphy.tools.args.backend.onnxrt.loader import OnnxrtSessionArgs
from polygraphy.tools.args.base import BaseRunnerArgs
from polygraphy.tools.args.model import ModelArgs
from polygraphy.tools.script import make_invocable

__all__ = ["HolocronOnnxrtRunnerArgs", "SessionWithKernels", "export_argument_groups", "match_providers"]


def match_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Polygraphy's provider spelling (an exact name, or a case-insensitive part of one: ``cpu``) as full names.

    Raises:
        ValueError: a requested provider matches none of ``available``.
    """
    names = []
    for name in requested or ["cpu"]:
        found = name if name in available else next((a for a in available if name.lower() in a.lower()), None)
        if found is None:
            raise ValueError(f"--providers: {name!r} matches no available provider ({', '.join(available)})")
        names.append(found)
    return names


class SessionWithKernels(BaseLoader):
    """Polygraphy loader: an onnxruntime session with holocron's custom-op library registered.

    Args:
        model: the ONNX model's path or bytes.
        providers: execution providers (Polygraphy's spelling, see :func:`match_providers`); default CPU.
    """

    def __init__(self, model: str | bytes | os.PathLike[str], providers: Sequence[str] | None = None) -> None:
        self.model = model
        self.providers = providers

    def call_impl(self) -> Any:
        import onnxruntime

        from holocron import runtime

        providers = match_providers(self.providers, onnxruntime.get_available_providers())
        session, _ = runtime.create_session(self.model, use_kernels=True, providers=providers)
        return session


class HolocronOnnxrtRunnerArgs(BaseRunnerArgs):
    """ONNX-Runtime with holocron's kernels: running inference with holocron's custom-op library registered.

    Depends on:

        - ModelArgs
        - OnnxrtSessionArgs
    """

    def get_name_opt_impl(self) -> tuple[str, str]:
        return "ONNX-Runtime with holocron kernels", "holocron-onnxrt"

    def add_to_script_impl(self, script: Any) -> None:
        script.add_import(imports=["OnnxrtRunner"], frm="polygraphy.backend.onnxrt")
        script.add_import(imports=["SessionWithKernels"], frm="holocron.export.parity.polygraphy_plugin")
        loader = script.add_loader(
            make_invocable(
                "SessionWithKernels",
                self.arg_groups[ModelArgs].path,
                providers=self.arg_groups[OnnxrtSessionArgs].providers,
            ),
            "build_holocron_onnxrt_session",
        )
        script.add_runner(make_invocable("OnnxrtRunner", loader, name="holocron-onnxrt"))


def export_argument_groups() -> list[Any]:
    """The ``polygraphy.run.plugins`` entry point: the argument groups holocron adds to ``polygraphy run``."""
    return [HolocronOnnxrtRunnerArgs()]
