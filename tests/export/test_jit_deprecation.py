"""holocron's own ``torch.jit`` calls print no deprecation warning (torch >= 2.14 deprecates script/trace/save/load);
the user's own calls, and every other warning, still do."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from holocron import nn as hnn
from holocron._jit import jit_deprecation_silenced
from holocron.export import to_torchscript
from holocron.export.model.loading import load_model
from holocron.export.torchscript import TracingFallbackWarning, to_script_module

TORCH_DEPRECATES_JIT = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 14)


def _jit_deprecations(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, FutureWarning) and str(w.message).startswith("`torch.jit.")
    ]


class _Unscriptable(torch.nn.Module):
    """Scripting fails (``**kwargs``), so the export falls back to tracing."""

    def forward(self, x: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return x * 2


def test_silencer_drops_only_the_jit_deprecation() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with jit_deprecation_silenced():
            warnings.warn("`torch.jit.script` is deprecated. Switch.", FutureWarning, stacklevel=2)
            warnings.warn("`torch.jit.trace` is not supported in Python 3.14+.", FutureWarning, stacklevel=2)
            warnings.warn("`torch.jit.load` is deprecated. Please switch to `torch.export`.", UserWarning, stacklevel=2)
            warnings.warn("something else is deprecated", FutureWarning, stacklevel=2)
        warnings.warn("`torch.jit.save` is deprecated. Please switch to `torch.export`.", FutureWarning, stacklevel=2)
    assert [str(w.message) for w in caught] == [
        "`torch.jit.trace` is not supported in Python 3.14+.",
        "`torch.jit.load` is deprecated. Please switch to `torch.export`.",
        "something else is deprecated",
        "`torch.jit.save` is deprecated. Please switch to `torch.export`.",
    ]


def test_export_and_load_print_no_jit_deprecation(tmp_path: Path) -> None:
    model = torch.nn.Sequential(hnn.Add2d(4, 4, 3, padding=1)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = to_torchscript(model, tmp_path / "model.pt")
        load_model(path)
        to_script_module(_Unscriptable(), torch.randn(1, 3))
    assert any(issubclass(w.category, TracingFallbackWarning) for w in caught), "the trace fallback did not run"
    assert _jit_deprecations(caught) == [], _jit_deprecations(caught)


@pytest.mark.skipif(not TORCH_DEPRECATES_JIT, reason=f"torch {torch.__version__} does not deprecate torch.jit.script")
def test_the_users_own_jit_call_still_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.script(torch.nn.Sequential(hnn.Add2d(4, 4, 3, padding=1)).eval())
    assert _jit_deprecations(caught), [str(w.message) for w in caught]


def test_importing_the_layers_prints_no_jit_deprecation() -> None:
    """``ConcatDownsample2dJit`` is scripted at import (as upstream's): that call is ours, so its warning is dropped."""
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import holocron.nn"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "torch.jit" not in result.stderr, result.stderr
