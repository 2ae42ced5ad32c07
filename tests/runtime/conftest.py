"""Shared pieces of the kernel tests: running single-node models with the custom-op library (tests/conftest.py).

Without the library the tests skip, unless ``HOLOCRON_REQUIRE_RUNTIME=1`` (``make test``) makes them fail.
"""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import run_with_kernels, single_node_model

RUN_MODEL_SCRIPT = Path(__file__).with_name("run_model_script.py")

RunKernel = Callable[..., np.ndarray]
RunInSubprocess = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def run_kernel(library: Path) -> RunKernel:
    """Run one ``holocron`` node with the kernels: ``run_kernel(op_type, inputs, attributes, threads=2)``."""

    def run(op_type: str, inputs: dict[str, np.ndarray], attributes: dict[str, object], threads: int = 2) -> np.ndarray:
        return run_with_kernels(single_node_model(op_type, inputs, attributes), inputs, library, threads)

    return run


@pytest.fixture
def run_in_subprocess(library: Path, tmp_path: Path) -> RunInSubprocess:
    """Run a model with the kernels in a fresh interpreter, so that a crash fails the test, not the test session.

    ``run_in_subprocess(model, feeds, env=None)`` returns the finished process: exit 0 with output ``Y`` in
    ``tmp_path / "out.npz"``, or exit 3 with ``ERROR <type>: <message>`` printed for an onnxruntime error.
    """

    def run(
        model: onnx.ModelProto, feeds: dict[str, np.ndarray], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        model_path = tmp_path / "model.onnx"
        feeds_path = tmp_path / "feeds.npz"
        onnx.save(model, model_path)
        np.savez(feeds_path, **feeds)
        return subprocess.run(
            [sys.executable, str(RUN_MODEL_SCRIPT), str(model_path), str(feeds_path), str(tmp_path / "out.npz")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOLOCRON_RUNTIME_LIBRARY": str(library), **(env or {})},
        )

    return run
