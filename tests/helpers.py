"""Helpers shared by the test folders: single-node ``holocron`` models, onnxruntime profiles, console-script runs,
BatchNorm calibration, and the op tests' shared hypothesis strategies and parametrized checks.

``tests/conftest.py`` puts this folder on ``sys.path``; import it as ``helpers``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from holocron.contract import DOMAIN, DOMAIN_VERSION

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
    module = {"holocron-export": "holocron.export.cli.export", "holocron-verify": "holocron.export.cli.verify"}[name]
    return [found] if found else [sys.executable, "-m", module]


def run_cli(
    *args: object, cwd: Path, env: dict[str, str] | None = None, name: str = "holocron-export"
) -> subprocess.CompletedProcess[str]:
    """Run a console script with ``args`` in ``cwd``, capturing its text output (5 minutes at most)."""
    command = [*cli_command(name), *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env=env)


#: A stage line of a command line's progress (``holocron-export: [  1.2s] loading model.pt``), off with --quiet.
PROGRESS_LINE = re.compile(r"^holocron-[a-z]+: \[ *\d+\.\ds\] ")


def readme_commands(heading: str, program: str) -> list[list[str]]:
    """The ``program`` command lines of the README section under ``heading`` (a ``##`` or ``###`` title, up to the
    next title of any level), from its ``bash`` blocks, continuation lines joined, each split into its words without
    the program name: what a test runs as written."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index(f"{heading}\n")
    end = re.search(r"\n#{2,3} ", text[start + len(heading) :])
    section = text[start : start + len(heading) + end.start()] if end else text[start:]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = line.split()
            if words and words[0] == program:
                commands.append(words[1:])
    return commands


def one_line_error(result: subprocess.CompletedProcess[str], name: str = "holocron-export") -> str:
    """The one line a failed run printed on stderr (asserting there is exactly one, in the CLI's format)."""
    lines = [line for line in result.stderr.strip().splitlines() if not PROGRESS_LINE.match(line)]
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


def draw_window(
    draw: Callable[[Any], Any], max_kernel: int, max_extra: tuple[int, int], max_group_channels: int
) -> dict[str, Any]:
    """Draw the input shape and window attributes of a windowed op for a hypothesis ``st.composite`` strategy.

    Args:
        draw: the ``draw`` of the composite strategy.
        max_kernel: largest kernel extent (each of ``kH``, ``kW`` in ``[1, max_kernel]``).
        max_extra: most pixels added to the smallest input ``(H, W)`` whose padded extent holds the dilated kernel.
        max_group_channels: most input channels per group.

    Returns:
        ``shape`` ``(N, C, H, W)`` with ``N`` in ``[1, 4]``, ``kernel`` ``(kH, kW)``, and the ONNX attributes
        ``strides`` and ``dilations`` (each in ``[1, 3]``), ``pads`` (each in ``[0, 3]``) and ``group`` (in ``[1, 3]``).
    """
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = [draw(st.integers(0, 3)) for _ in range(4)]
    # Smallest input whose padded extent holds the dilated kernel, plus a few extra pixels.
    h = max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]) + draw(st.integers(0, max_extra[0]))
    w = max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]) + draw(st.integers(0, max_extra[1]))
    group = draw(st.integers(1, 3))
    return {
        "shape": (draw(st.integers(1, 4)), group * draw(st.integers(1, max_group_channels)), h, w),
        "kernel": (kh, kw),
        "strides": [draw(st.integers(1, 3)), draw(st.integers(1, 3))],
        "pads": pads,
        "dilations": [dh, dw],
        "group": group,
    }


def bad_arguments_test(op: Callable[..., Any], valid: dict[str, Any], bad: dict[str, tuple]) -> Callable[..., None]:
    """A pytest test function calling ``op`` with the keyword arguments ``valid`` but for one bad override per case.

    Args:
        op: the function under test.
        valid: keyword arguments that ``op`` accepts.
        bad: case id -> (overrides of ``valid``, the exception type expected, a pattern its message must match).

    Returns:
        the test, parametrized over ``bad``; bind it to a ``test_*`` name of the test module.
    """

    @pytest.mark.parametrize(("override", "error", "message"), bad.values(), ids=bad.keys())
    def test(override: dict[str, Any], error: type[Exception], message: str) -> None:
        with pytest.raises(error, match=message):
            op(**{**valid, **override})

    return test


def reference_test(configs: st.SearchStrategy[dict], run_config: Callable, rtol: float, atol: float) -> Callable:
    """A hypothesis test of a kernel against its reference over generated configurations.

    Args:
        configs: strategy of the configurations.
        run_config: ``(run_kernel, config) -> (out, expected)``, the kernel's output and the reference's.
        rtol: relative tolerance of the comparison.
        atol: absolute tolerance of the comparison.

    Returns:
        the test (taking the ``run_kernel`` fixture), 60 examples; bind it to a ``test_*`` name of the test module.
    """

    @settings(max_examples=60, deadline=None)
    @given(config=configs)
    def test(run_kernel: Callable, config: dict) -> None:
        out, expected = run_config(run_kernel, config)
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)

    return test


@dataclass(frozen=True)
class WindowCase:
    """Geometry of a sliding-window op's test case, in the torch op's terms (symmetric ``padding``)."""

    batch: int = 2
    size: tuple[int, int] = (5, 6)
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def out_size(self) -> tuple[int, int]:
        """Output ``(H_out, W_out)`` of the window over ``size``."""
        return tuple(  # type: ignore[return-value]
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip(self.size, self.kernel, self.stride, self.padding, self.dilation, strict=True)
        )

    def window(self) -> tuple[list[int], list[int], list[int]]:
        """The op arguments ``stride, padding, dilation``."""
        return [*self.stride], [*self.padding], [*self.dilation]


def run_with_kernels(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], library: Path, threads: int = 2) -> Any:
    """Run ``model`` on onnxruntime's CPU provider with holocron's library registered; its first output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.register_custom_ops_library(str(library))
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(feeds))[0]


def custom_op_chain(
    in_channels: int, shape: Sequence[int], *, activation: bool = False, pool: bool = False
) -> torch.nn.Module:
    """Add2d -> BatchNorm [-> HardMish] -> Involution2d -> BatchNorm -> LambdaLayer [-> global average pool], seeded.

    8 channels after the Add2d; the BatchNorms (mode-sensitive) are calibrated on random batches of ``shape``.
    """
    import holocron.nn as hnn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers: list[torch.nn.Module] = [
            hnn.Add2d(in_channels, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8, momentum=None),
        ]
        layers += [hnn.HardMish()] if activation else []
        layers += [
            hnn.Involution2d(8, 3, padding=1, groups=2),
            torch.nn.BatchNorm2d(8, momentum=None),
            hnn.LambdaLayer(8, 8, dim_k=4, r=3, num_heads=2),
        ]
        layers += [hnn.GlobalAvgPool2d(flatten=True)] if pool else []
        return calibrated(torch.nn.Sequential(*layers), shape)
