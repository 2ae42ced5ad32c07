"""Shared pieces of the kernel tests: the custom-op library, single-node models and running them.

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
from onnx import TensorProto, helper

from holocron.ops.contract import DOMAIN, DOMAIN_VERSION
from holocron.runtime import RuntimeNotBuiltError, library_path

REQUIRE_ENV = "HOLOCRON_REQUIRE_RUNTIME"
OPSET = 18
RUN_MODEL_SCRIPT = Path(__file__).with_name("run_model_script.py")

RunKernel = Callable[..., np.ndarray]
NodeModel = Callable[..., onnx.ModelProto]
RunInSubprocess = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def library() -> Path:
    """The built custom-op library; skips (or fails under ``HOLOCRON_REQUIRE_RUNTIME=1``) when it is missing."""
    try:
        return Path(library_path())
    except RuntimeNotBuiltError as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but the runtime library is missing: {error}")
        pytest.skip(f"holocron runtime library not built: {error}")


def node_model(
    op_type: str,
    inputs: dict[str, np.ndarray],
    attributes: dict[str, object] | None = None,
    node_inputs: list[str] | None = None,
    functions: list[onnx.FunctionProto] | None = None,
    opset: int = OPSET,
) -> onnx.ModelProto:
    """A model of one ``holocron`` node fed by graph inputs named like ``inputs``.

    Args:
        op_type: ``Add2d``, ``Involution2d`` or ``Lambda``.
        inputs: graph inputs (name -> value, for their static shapes).
        attributes: node attributes.
        node_inputs: the node's input names when they differ from ``inputs`` (e.g. ``""`` for an absent optional).
        functions: model-local functions (the standard-ONNX fallbacks).
        opset: default-domain opset.
    """
    node = helper.make_node(op_type, node_inputs or list(inputs), ["Y"], domain=DOMAIN, **(attributes or {}))
    graph = helper.make_graph(
        [node],
        f"single_{op_type}",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)) for name, value in inputs.items()],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)],
        functions=functions or [],
    )


@pytest.fixture(scope="session")
def run_kernel(library: Path) -> RunKernel:
    """Run one ``holocron`` node with the kernels: ``run_kernel(op_type, inputs, attributes, threads=2)``."""
    import onnxruntime as ort

    def run(op_type: str, inputs: dict[str, np.ndarray], attributes: dict[str, object], threads: int = 2) -> np.ndarray:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.register_custom_ops_library(str(library))
        model = node_model(op_type, inputs, attributes).SerializeToString()
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        (out,) = session.run(None, inputs)
        return out

    return run


@pytest.fixture(scope="session")
def make_node_model() -> NodeModel:
    """:func:`node_model`, for the test modules."""
    return node_model


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
