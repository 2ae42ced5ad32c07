"""Helpers shared by the test folders: single-node ``holocron`` models and onnxruntime profiles.

``tests/conftest.py`` puts this folder on ``sys.path``; import it as ``helpers``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx
import torch
from onnx import TensorProto, helper

from holocron.ops.contract import DOMAIN, DOMAIN_VERSION

if TYPE_CHECKING:
    import onnxruntime

#: Default-domain opset of the single-node models.
OPSET = 18


def _dims(value: Any) -> list[int | str]:
    """Static shape of an array or tensor, or ``value`` itself when it is already a shape (ints or symbolic names)."""
    return [d if isinstance(d, str) else int(d) for d in getattr(value, "shape", value)]


def single_node_model(
    op_type: str,
    inputs: Mapping[str, Any],
    attributes: Mapping[str, object] | None = None,
    *,
    node_inputs: Sequence[str] | None = None,
    output_shape: Sequence[int | str] | None = None,
    functions: Sequence[onnx.FunctionProto] = (),
    opset: int = OPSET,
) -> onnx.ModelProto:
    """A model of one ``holocron`` node ``op_type`` with output ``Y``, fed by float graph inputs.

    Args:
        op_type: ``Add2d``, ``Involution2d`` or ``Lambda``.
        inputs: graph input name -> a value (array or tensor, for its static shape) or a shape.
        attributes: node attributes.
        node_inputs: the node's input names when they differ from ``inputs`` (``""`` for an absent optional input).
        output_shape: the declared shape of ``Y`` (unknown when ``None``).
        functions: model-local functions (the standard-ONNX fallbacks).
        opset: default-domain opset.

    Returns:
        the model, importing the default domain at ``opset`` and the ``holocron`` domain.
    """
    node_inputs = list(inputs) if node_inputs is None else list(node_inputs)
    node = helper.make_node(op_type, node_inputs, ["Y"], domain=DOMAIN, **dict(attributes or {}))
    graph = helper.make_graph(
        [node],
        f"single_{op_type}",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, _dims(value)) for name, value in inputs.items()],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None if output_shape is None else list(output_shape))],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)],
        functions=list(functions),
    )


def enable_profiling(options: onnxruntime.SessionOptions, prefix: Path) -> onnxruntime.SessionOptions:
    """Turn on onnxruntime's profiling in ``options``, writing the profile to ``prefix``-named files."""
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    return options


def executed_op_types(session: onnxruntime.InferenceSession) -> set[str]:
    """Op types of the nodes a profiling session ran, read from its profile (this ends the profiling)."""
    events = json.loads(Path(session.end_profiling()).read_text())
    return {
        event["args"]["op_name"]
        for event in events
        if event.get("cat") == "Node" and "op_name" in event.get("args", {})
    }


def cli_command(name: str = "holocron-export") -> list[str]:
    """The installed console script ``name`` (declared in pyproject), else its module run by this interpreter."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    module = {"holocron-export": "holocron.export.cli", "holocron-verify": "holocron.export.verify_cli"}[name]
    return [found] if found else [sys.executable, "-m", module]


def run_cli(
    *args: object, cwd: Path, env: dict[str, str] | None = None, name: str = "holocron-export"
) -> subprocess.CompletedProcess[str]:
    """Run a console script with ``args`` in ``cwd``, capturing its text output (5 minutes at most)."""
    command = [*cli_command(name), *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env=env)


def one_line_error(result: subprocess.CompletedProcess[str], name: str = "holocron-export") -> str:
    """The one line a failed run printed on stderr (asserting there is exactly one, in the CLI's format)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line reason on stderr, got:\n{result.stderr}"
    assert lines[0].startswith(f"{name}: error: ")
    return lines[0]


def calibrated(model: torch.nn.Module, shape: Sequence[int], batches: int = 4) -> torch.nn.Module:
    """``model`` in eval mode after its BatchNorms (built with ``momentum=None``) saw ``batches`` random batches.

    Calibrated statistics keep activations at the scale a trained network has: Add2d outputs are sums of absolute
    differences (tens in magnitude), and a chain of custom ops would otherwise grow values past float32's resolution.
    """
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, *shape[1:]))
    return model.eval()
