"""The reference networks of ``holocron._networks``: shapes, determinism, TorchScript, BatchNorm calibration, ONNX.

The ONNX test also records, per network, how far eager float32 and onnxruntime (holocron kernels) are from a float64
eager reference (``pytest -s`` prints them; they are also in the junit properties).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from holocron import _networks
from holocron._networks import NETWORKS, calibrate_batchnorm, lambda_resnet26, rednet26
from holocron.nn import Add2d, Involution2d, LambdaLayer
from holocron.nn._validation import HolocronArgumentError

_SPATIAL_LAYER = {"addernet_resnet20": Add2d, "rednet26": Involution2d, "lambda_resnet26": LambdaLayer}
_ONNX_OP = {"addernet_resnet20": "Add2d", "rednet26": "Involution2d", "lambda_resnet26": "Lambda"}


def _narrow(name: str) -> nn.Module:
    spec = NETWORKS[name]
    return spec.builder(**spec.narrow_kwargs)


def _input(name: str, seed: int = 1) -> Tensor:
    return torch.randn(NETWORKS[name].test_input_shape, generator=torch.Generator().manual_seed(seed))


def _num_classes(name: str) -> int:
    return NETWORKS[name].narrow_kwargs.get("num_classes", 10 if name == "addernet_resnet20" else 1000)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_narrow_forward_shape_and_layers(name: str) -> None:
    model = _narrow(name)
    assert not model.training
    assert any(isinstance(module, _SPATIAL_LAYER[name]) for module in model.modules())
    with torch.no_grad():
        out = model(_input(name))
    assert out.shape == (NETWORKS[name].test_input_shape[0], _num_classes(name))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "millions"),
    [("addernet_resnet20", 0.27), ("rednet26", 9.23), ("lambda_resnet26", None)],
)
def test_full_width_forward_and_parameter_count(name: str, millions: float | None) -> None:
    spec = NETWORKS[name]
    model = spec.builder()
    count = sum(parameter.numel() for parameter in model.parameters())
    if millions is not None:  # the papers' figures (AdderNet Table 1, Involution Table 2)
        assert round(count / 1e6, 2) == millions
    with torch.no_grad():
        out = model(torch.randn(spec.full_input_shape))
    assert out.shape == (1, 10 if name == "addernet_resnet20" else 1000)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_builders_are_deterministic_and_leave_the_rng_alone(name: str) -> None:
    state = torch.get_rng_state()
    first, second, other = _narrow(name), _narrow(name), NETWORKS[name].builder(**NETWORKS[name].narrow_kwargs, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    first_state, second_state, other_state = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(value, second_state[key]) for key, value in first_state.items())
    assert not all(torch.equal(value, other_state[key]) for key, value in first_state.items())


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_scripted_equals_eager(name: str) -> None:
    model = calibrate_batchnorm(_narrow(name), NETWORKS[name].test_input_shape)
    scripted = torch.jit.script(model)
    x = _input(name)
    with torch.no_grad():
        expected = model(x)
        # The scripted graph runs the same ATen ops and custom ops as eager mode: bitwise equal, also after the
        # profiling executor's first runs.
        for _ in range(3):
            assert torch.equal(scripted(x), expected)


def test_calibrate_batchnorm_sets_the_exact_statistics_of_the_layer_inputs() -> None:
    name = "lambda_resnet26"
    model = _narrow(name)
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    defaults = [(norm.running_mean.clone(), norm.running_var.clone()) for norm in norms]
    # A BatchNorm of the last stage (2 x 2 positions: few values per channel, so the unbiased variance differs
    # from the biased one by 1.6 %) and one inside a lambda layer.
    watched = {
        "stages.7.bn2": model.get_submodule("stages.7.bn2"),
        "norm_v": model.get_submodule("stages.4.spatial.norm_v"),
    }
    seen: dict[str, list[Tensor]] = {key: [] for key in watched}
    handles = [
        norm.register_forward_hook(lambda module, args, output, key=key: seen[key].append(args[0].detach().clone()))
        for key, norm in watched.items()
    ]
    try:
        returned = calibrate_batchnorm(model, NETWORKS[name].test_input_shape, batches=4, seed=3)
    finally:
        for handle in handles:
            handle.remove()
    assert returned is model
    assert not model.training
    for norm, (mean, var) in zip(norms, defaults, strict=True):
        assert not torch.equal(norm.running_mean, mean)
        assert not torch.equal(norm.running_var, var)
        assert int(norm.num_batches_tracked) == 4
    for key, norm in watched.items():
        inputs = torch.cat(seen[key]).to(torch.float64)
        assert inputs.shape[0] == 4 * NETWORKS[name].test_input_shape[0]
        values = inputs.transpose(0, 1).reshape(inputs.shape[1], -1)
        # float64 statistics rounded to float32: equal within one float32 rounding
        torch.testing.assert_close(norm.running_mean, values.mean(dim=1).float(), rtol=2**-23, atol=1e-12)
        torch.testing.assert_close(norm.running_var, values.var(dim=1, unbiased=True).float(), rtol=2**-23, atol=0.0)


def test_calibrate_batchnorm_is_seeded_and_randomizes_affine_parameters() -> None:
    name = "rednet26"
    shape = NETWORKS[name].test_input_shape
    first = calibrate_batchnorm(_narrow(name), shape, seed=5)
    second = calibrate_batchnorm(_narrow(name), shape, seed=5)
    kept = calibrate_batchnorm(_narrow(name), shape, seed=5, randomize_affine=False)
    assert all(torch.equal(value, second.state_dict()[key]) for key, value in first.state_dict().items())
    branch_ends = [module for module in first.modules() if isinstance(module, _networks._BranchEndNorm)]
    others = [
        m for m in first.modules() if isinstance(m, nn.BatchNorm2d) and not isinstance(m, _networks._BranchEndNorm)
    ]
    assert len(branch_ends) == 8
    assert all(((norm.weight >= 0.1) & (norm.weight <= 0.4)).all() for norm in branch_ends)
    assert all(((norm.weight >= 0.5) & (norm.weight <= 1.5)).all() for norm in others)
    assert all(
        torch.equal(norm.weight, torch.ones_like(norm.weight))
        for norm in kept.modules()
        if isinstance(norm, nn.BatchNorm2d)
    )


def test_calibrate_batchnorm_rejects_bad_arguments() -> None:
    model = _narrow("addernet_resnet20")
    with pytest.raises(HolocronArgumentError, match="batches"):
        calibrate_batchnorm(model, (4, 3, 32, 32), batches=0)
    with pytest.raises(HolocronArgumentError, match="input_shape"):
        calibrate_batchnorm(model, (4, 0, 32, 32))
    with pytest.raises(ValueError, match="value per channel"):
        calibrate_batchnorm(model, (1, 3, 4, 4), batches=1)


def test_builders_reject_bad_arguments() -> None:
    with pytest.raises(HolocronArgumentError, match="kernel_size"):
        rednet26(kernel_size=4)
    with pytest.raises(HolocronArgumentError, match="input_size"):
        lambda_resnet26(r=None)
    with pytest.raises(HolocronArgumentError, match="`r`"):
        lambda_resnet26(r=8)
    with pytest.raises(HolocronArgumentError, match="base_width"):
        lambda_resnet26(base_width=18)


def test_lambda_resnet26_global_contexts() -> None:
    model = lambda_resnet26(num_classes=10, base_width=16, r=None, input_size=64)
    layers = [module for module in model.modules() if isinstance(module, LambdaLayer)]
    assert [layer.pos_emb.shape[0] for layer in layers] == [256, 256, 64, 64, 16, 16, 16, 16]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)
        with pytest.raises(ValueError, match="global embedding"):
            model(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_onnx_export_and_float64_errors(name: str, tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from holocron.export import to_onnx, verify
    from holocron.runtime import create_session, is_available

    if not is_available():
        if os.environ.get("HOLOCRON_REQUIRE_RUNTIME") == "1":
            pytest.fail("HOLOCRON_REQUIRE_RUNTIME=1 but holocron.runtime's custom-op library is not available")
        pytest.skip("holocron.runtime's custom-op library is not built")

    model = calibrate_batchnorm(_narrow(name), NETWORKS[name].test_input_shape)
    x = _input(name)
    path = tmp_path / f"{name}.onnx"
    to_onnx(model, (x,), path)
    proto = onnx.load(str(path))
    holocron_nodes = [node.op_type for node in proto.graph.node if node.domain == "holocron"]
    expected_count = sum(isinstance(module, _SPATIAL_LAYER[name]) for module in model.modules())
    assert holocron_nodes == [_ONNX_OP[name]] * expected_count

    report = verify(model, path, [x])
    assert report.execution_path == "holocron-kernels"
    ort_error = report.outputs[0].max_abs_error
    assert ort_error is not None

    session, _ = create_session(path, use_kernels=True)
    ort_out = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    with torch.no_grad():
        eager = model(x)
        reference = copy.deepcopy(model).double()(x.double())
    eager_vs_f64 = (eager.double() - reference).abs().max().item()
    ort_vs_f64 = (ort_out.double() - reference).abs().max().item()
    figures = {
        "nodes": len(proto.graph.node),
        "max_abs_output": reference.abs().max().item(),
        "ort_vs_eager": ort_error,
        "eager_f32_vs_f64": eager_vs_f64,
        "ort_vs_f64": ort_vs_f64,
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\n{name}: " + ", ".join(f"{key}={value:.3g}" for key, value in figures.items()))
    # Both float32 paths are close to the float64 truth (the outputs are of order 1).
    assert 0 < eager_vs_f64 < 1e-4
    assert ort_vs_f64 < 1e-4
    assert report.passed
