"""Shared helpers of the holocron.export tests, exposed as fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
from torch import nn

from holocron.runtime import is_available as kernels_available


def _seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """Build a module under a fixed seed, give its BatchNorms non-trivial statistics, and put it in eval mode.

    Default BatchNorm statistics (mean 0, variance 1) make eval-mode normalization nearly an identity, which would
    hide an exporter that drops or mistranslates it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                with torch.no_grad():
                    sub.running_mean.uniform_(-0.5, 0.5)
                    sub.running_var.uniform_(0.5, 1.5)
                    if sub.affine:
                        sub.weight.uniform_(0.5, 1.5)
                        sub.bias.uniform_(-0.5, 0.5)
    return module.eval()


@pytest.fixture
def seeded() -> Callable[..., nn.Module]:
    return _seeded


@pytest.fixture
def require_kernels() -> None:
    """Skip when holocron's onnxruntime library is not built, unless HOLOCRON_REQUIRE_RUNTIME=1 (then fail)."""
    if kernels_available():
        return
    if os.environ.get("HOLOCRON_REQUIRE_RUNTIME") == "1":
        pytest.fail("HOLOCRON_REQUIRE_RUNTIME=1 but holocron.runtime's custom-op library is not available")
    pytest.skip("holocron.runtime's custom-op library is not built")
