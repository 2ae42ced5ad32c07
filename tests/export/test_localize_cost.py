"""``localize=True`` costs at most twice a plain verification on the largest reference network.

Localization records every module's output in the eager runs the verdict needs anyway (float32 and the float64
reference, one each) and adds one onnxruntime run of a copy of the model with the module values as outputs. The
network is LambdaResNet-26, the largest of the three, at the narrow width and the 4x3x64x64 input of the other tests
(the full width at 224x224 takes minutes on a loaded 2-core machine; at batch 1 the fixed cost of opening the
second session weighs more: about 2.4x there). Costs are CPU times of this process
(other processes on the machine do not count), after one untimed verification of each kind (the process's first
TorchScript and onnxruntime runs compile and allocate once, for whichever comes first).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import to_onnx_proto
from holocron.export.parity.api import verify

pytestmark = pytest.mark.usefixtures("require_kernels")

NAME = "lambda_resnet26"


def _cpu_time(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def test_localize_costs_at_most_twice_a_plain_verify() -> None:
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

    # The TorchScript MODEL: its recorder adds the most (an inlined, instrumented copy of the graph); a live module's
    # hooks add less (1.35-1.47x measured on these networks).
    verify(loaded(), proto, shape)
    with_modules, localized = _cpu_time(lambda: verify(loaded(), proto, shape, localize=True))
    plain, _ = _cpu_time(lambda: verify(loaded(), proto, shape))
    assert localized.passed and localized.localization_method == "TorchScript graph"
    assert len(localized.modules) > 50
    assert with_modules <= 2 * plain, f"localize {with_modules:.2f}s vs plain {plain:.2f}s (CPU)"
