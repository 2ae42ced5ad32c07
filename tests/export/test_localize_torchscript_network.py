"""``localize=True`` on the largest reference network loaded from a TorchScript archive: the recorder is the
TorchScript one and it compares the modules (what it costs next to a plain verification is measured by
``benchmarks/bench_localize.py``, not asserted here: timings belong in benchmarks).

The network is LambdaResNet-26, the largest of the three, at the narrow width and the 4x3x64x64 input of the other
tests.
"""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import to_onnx_proto
from holocron.export.parity.api import verify

pytestmark = pytest.mark.usefixtures("require_kernels")

NAME = "lambda_resnet26"


def test_localize_from_a_torchscript_archive_compares_the_modules() -> None:
    spec = NETWORKS[NAME]
    model = calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)
    archive = io.BytesIO()
    torch.jit.save(torch.jit.script(model), archive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        example = torch.zeros(spec.test_input_shape)
        proto = to_onnx_proto(model, (example,), exporter="torchscript", dynamic_batch=True)
    shape = [spec.test_input_shape]

    def loaded() -> torch.nn.Module:
        """A freshly loaded TorchScript MODEL, as holocron-verify has (TorchScript compiles on the first runs)."""
        archive.seek(0)
        return torch.jit.load(archive)

    localized = verify(loaded(), proto, shape, localize=True)
    plain = verify(loaded(), proto, shape)
    assert localized.passed and localized.localization_method == "TorchScript graph"
    assert len(localized.modules) > 50
    assert plain.passed and not plain.modules
