"""The fallback functions attached to exports: one body per node, no control flow, float16, numerics, re-attaching."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import holocron.ops
from holocron.export.onnx.ops import attach_fallback_functions, reattach_fallback_functions

OPSET = 18


def _add2d_model(nodes: list[dict], dtype: int = TensorProto.FLOAT) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A chain-free model: one Add2d per entry of ``nodes`` (keys x, w, b, attrs), each fed by its own input."""
    graph_nodes, inputs, outputs, inits, feeds = [], [], [], [], {}
    np_type = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    for i, spec in enumerate(nodes):
        names = [f"X{i}", f"W{i}"] + ([f"B{i}"] if spec.get("b") is not None else [])
        graph_nodes.append(
            helper.make_node("Add2d", names, [f"Y{i}"], domain="holocron", name=f"add{i}", **spec["attrs"])
        )
        inputs.append(helper.make_tensor_value_info(f"X{i}", dtype, list(spec["x"].shape)))
        outputs.append(helper.make_tensor_value_info(f"Y{i}", dtype, ["n", "c", "h", "w"]))
        inits.append(numpy_helper.from_array(spec["w"].astype(np_type), f"W{i}"))
        if spec.get("b") is not None:
            inits.append(numpy_helper.from_array(spec["b"].astype(np_type), f"B{i}"))
        feeds[f"X{i}"] = spec["x"].astype(np_type)
    graph = helper.make_graph(graph_nodes, "add2d", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("holocron", 1)])
    return attach_fallback_functions(model), feeds


def _eager(spec: dict) -> np.ndarray:
    a = spec["attrs"]
    b = None if spec.get("b") is None else torch.from_numpy(spec["b"])
    pads = a.get("pads", [0, 0, 0, 0])
    return holocron.ops.add2d(
        torch.from_numpy(spec["x"]),
        torch.from_numpy(spec["w"]),
        b,
        a.get("strides", [1, 1]),
        pads[:2],
        [1, 1],
        a.get("group", 1),
        bool(a.get("normalize_slices", 0)),
        a.get("eps", 1e-14),
    ).numpy()


def _plain(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _specs(rng: np.random.Generator) -> list[dict]:
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    return [
        {"x": x, "w": rng.standard_normal((6, 4, 3, 3)), "b": rng.standard_normal(6), "attrs": {"pads": [1, 1, 1, 1]}},
        {"x": x, "w": rng.standard_normal((40, 2, 2, 2)), "attrs": {"group": 2, "strides": [2, 1]}},
        {"x": x, "w": rng.standard_normal((4, 4, 3, 3)), "attrs": {"normalize_slices": 1, "eps": 1e-5}},
    ]


def _float32(specs: list[dict]) -> list[dict]:
    return [{k: v.astype(np.float32) if isinstance(v, np.ndarray) else v for k, v in s.items()} for s in specs]


def test_each_node_gets_its_own_body_without_control_flow() -> None:
    specs = _float32(_specs(np.random.default_rng(0)))
    model, feeds = _add2d_model(specs)
    overloads = [node.overload for node in model.graph.node]
    assert len(set(overloads)) == 3 and all(overloads)
    assert sorted(fn.overload for fn in model.functions) == sorted(overloads)
    assert model.ir_version >= 10
    for fn in model.functions:
        assert not {"Loop", "If", "Scan"} & {node.op_type for node in fn.node}, fn.overload
    onnx.checker.check_model(model, full_check=True)
    for actual, spec in zip(_plain(model, feeds), specs, strict=True):
        np.testing.assert_allclose(actual, _eager(spec), rtol=1e-5, atol=1e-4)


def test_reference_evaluator_needs_inlining_for_several_bodies_of_one_op() -> None:
    """onnx's ReferenceEvaluator keys local functions by domain and name only (it ignores IR-10 overloads); the
    inlined model (what ``custom_ops=False`` exports are) is exact."""
    from onnx.reference import ReferenceEvaluator

    specs = _float32(_specs(np.random.default_rng(1)))
    model, feeds = _add2d_model(specs)
    inlined = onnx.inliner.inline_local_functions(model)
    for actual, spec in zip(ReferenceEvaluator(inlined).run(None, feeds), specs, strict=True):
        np.testing.assert_allclose(actual, _eager(spec), rtol=1e-5, atol=1e-4)


def test_normalized_constant_windows_match_float64() -> None:
    """Constant and near-constant windows at eps=1e-14: a float32 mean would leave rounding noise that 1/sqrt(eps)
    amplifies; the body centres in float64, as the float64 reference does."""
    rng = np.random.default_rng(2)
    x = np.full((1, 3, 5, 5), 0.1, np.float32)
    x[0, :, 3:, 3:] += np.float32(1e-6) * rng.standard_normal((3, 2, 2)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    model, feeds = _add2d_model([{"x": x, "w": w, "attrs": {"normalize_slices": 1, "eps": 1e-14}}])
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64)[0], (3, 3), axis=(1, 2))  # C, 3, 3, 3, 3
    slices = windows.transpose(1, 2, 0, 3, 4).reshape(3, 3, -1)  # (H_out, W_out, C * 9) in (c, i, j) order
    centered = slices - slices.mean(-1, keepdims=True)
    normalized = centered / np.sqrt((centered**2).mean(-1, keepdims=True) + 1e-14)
    expected = -np.abs(normalized[None] - w.reshape(4, 1, 1, -1).astype(np.float64)).sum(-1)
    np.testing.assert_allclose(_plain(model, feeds)[0][0], expected, rtol=1e-5, atol=1e-4)


def test_normalized_constant_windows_at_eps_zero_are_zeros_as_in_eager() -> None:
    """A constant window at eps=0 has var + eps == 0: the contract (and eager) normalize it to zeros, not 0 / 0."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, :, :4, :4] = 0.25  # every window with its centre in [1, 2] x [1, 2] is constant
    spec = {"x": x, "w": rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "b": rng.standard_normal(3)}
    spec["b"] = spec["b"].astype(np.float32)
    spec["attrs"] = {"normalize_slices": 1, "eps": 0.0}
    model, feeds = _add2d_model([spec])
    (actual,) = _plain(model, feeds)
    expected = _eager(spec)
    assert np.isfinite(actual).all()
    constant_window = -np.abs(spec["w"]).reshape(3, -1).sum(-1) + spec["b"]
    np.testing.assert_allclose(expected[0, :, 1, 1], constant_window, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_float16_bodies_run_on_plain_onnxruntime() -> None:
    specs = _specs(np.random.default_rng(3))
    model, feeds = _add2d_model(_float32(specs), dtype=TensorProto.FLOAT16)
    onnx.checker.check_model(model, full_check=True)
    for actual, spec in zip(_plain(model, feeds), specs, strict=True):
        assert actual.dtype == np.float16
        rounded = {
            k: v.astype(np.float16).astype(np.float32) if isinstance(v, np.ndarray) else v for k, v in spec.items()
        }
        expected = _eager(rounded)
        np.testing.assert_allclose(actual.astype(np.float32), expected, rtol=0, atol=2e-3 * np.abs(expected).max())


def test_missing_static_weight_shape_is_a_clear_error() -> None:
    node = helper.make_node("Add2d", ["X", "W"], ["Y"], domain="holocron")
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 4, 4]),
            helper.make_tensor_value_info("W", TensorProto.FLOAT, ["c", 2, 3, 3]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("holocron", 1)])
    with pytest.raises(ValueError, match="static shape of input W"):
        attach_fallback_functions(model)


def test_reattach_after_onnxruntime_saved_an_optimized_model(tmp_path, require_kernels) -> None:
    from holocron.runtime import register_library

    specs = _float32(_specs(np.random.default_rng(4)))
    model, feeds = _add2d_model(specs)
    options = ort.SessionOptions()
    register_library(options)
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    saved = onnx.load(tmp_path / "optimized.onnx")
    assert not saved.functions, "onnxruntime kept the functions: the helper is no longer needed"
    repaired = reattach_fallback_functions(saved)
    assert not saved.functions, "reattach_fallback_functions must leave its argument unchanged"
    for actual, spec in zip(_plain(repaired, feeds), specs, strict=True):
        np.testing.assert_allclose(actual, _eager(spec), rtol=1e-5, atol=1e-4)
