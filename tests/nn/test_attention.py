"""SAM, TripletAttention and LambdaLayer against references written from the papers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from holocron import nn as hnn
from holocron.nn.modules.attention import DimAttention

BN_KEYS = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def _randomize_bn_stats(module: nn.Module) -> None:
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)


def _bn_eval(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    normalized = (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
    return normalized * bn.weight.view(shape) + bn.bias.view(shape)


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 8, 7, 7)])
def test_sam_gates_every_channel_with_one_map(shape):
    module = hnn.SAM(shape[1])
    x = torch.randn(shape)
    logits = torch.einsum("c,nchw->nhw", module.conv.weight.view(-1), x) + module.conv.bias
    torch.testing.assert_close(module(x), x * torch.sigmoid(logits).unsqueeze(1))
    assert list(module.state_dict()) == ["conv.weight", "conv.bias"]
    assert module.conv.weight.shape == (1, shape[1], 1, 1)


def _branch_reference(branch: DimAttention, x: torch.Tensor, dim: int) -> torch.Tensor:
    rotated = x.transpose(dim, 1)
    pooled = torch.cat([rotated.amax(1, keepdim=True), rotated.mean(1, keepdim=True)], dim=1)
    gate = torch.sigmoid(_bn_eval(TF.conv2d(pooled, branch.compress[1].weight, padding=3), branch.compress[2]))
    return (rotated * gate).transpose(dim, 1)


@pytest.mark.parametrize("shape", [(1, 3, 5, 6), (2, 4, 7, 3)])
def test_triplet_attention_averages_three_rotated_branches(shape):
    module = hnn.TripletAttention().eval()
    _randomize_bn_stats(module)
    x = torch.randn(shape)
    expected = sum(
        _branch_reference(branch, x, dim)
        for branch, dim in ((module.c_branch, 1), (module.h_branch, 2), (module.w_branch, 3))
    )
    torch.testing.assert_close(module(x), expected / 3)


def test_triplet_attention_structure():
    module = hnn.TripletAttention()
    assert [module.c_branch.dim, module.h_branch.dim, module.w_branch.dim] == [1, 2, 3]
    keys = []
    for branch in ("c_branch", "h_branch", "w_branch"):
        keys += [f"{branch}.compress.1.weight", *(f"{branch}.compress.2.{key}" for key in BN_KEYS)]
    assert list(module.state_dict()) == keys
    assert module.c_branch.compress[1].weight.shape == (1, 2, 7, 7)
    assert module.c_branch.compress[2].momentum == 0.01
    with pytest.raises(ValueError, match="dim"):
        DimAttention(0)


def _lambda_reference(module: hnn.LambdaLayer, x: torch.Tensor) -> torch.Tensor:
    """Eq. of the paper: y_n = (lambda_c + lambda_p_n)^T q_n per head; channel layouts as in the op contract."""
    n, _, h, w = x.shape
    heads, u = module.num_heads, module.u
    q = module.norm_q(module.to_q(x)).reshape(n, heads, -1, h * w)
    keys = module.to_k(x).reshape(n, -1, u, h * w).softmax(dim=-1)
    values = module.norm_v(module.to_v(x)).reshape(n, -1, u, h * w)
    dim_k, dim_v = keys.shape[1], values.shape[1]
    content = torch.einsum("nkum,nvum->nkv", keys, values)
    if module.R is not None:
        r = module.R.shape[-1]
        pad = r // 2
        images = TF.pad(values.reshape(n, dim_v, u, h, w), [pad] * 4)
        position = torch.zeros(n, dim_k, dim_v, h, w, dtype=x.dtype)
        for i in range(r):
            for j in range(r):
                window = images[..., i : i + h, j : j + w]
                position += torch.einsum("ku,nvuyx->nkvyx", module.R[:, :, 0, i, j], window)
        position = position.reshape(n, dim_k, dim_v, h * w)
    else:
        position = torch.einsum("pmku,nvum->nkvp", module.pos_emb, values)
    lambdas = content.unsqueeze(-1) + position
    return torch.einsum("nhkm,nkvm->nhvm", q, lambdas).reshape(n, heads * dim_v, h, w)


LAMBDA_CONFIGS = [
    ({"in_channels": 4, "out_channels": 8, "dim_k": 4, "r": 3, "num_heads": 2}, (2, 4, 5, 6)),
    ({"in_channels": 3, "out_channels": 4, "dim_k": 2, "r": 5, "num_heads": 4, "dim_u": 2}, (1, 3, 4, 4)),
    ({"in_channels": 4, "out_channels": 6, "dim_k": 3, "n": 12, "num_heads": 3, "dim_u": 2}, (2, 4, 3, 4)),
    ({"in_channels": 2, "out_channels": 4, "dim_k": 2, "n": 9, "num_heads": 1}, (3, 2, 3, 3)),
]


@pytest.mark.parametrize(("kwargs", "shape"), LAMBDA_CONFIGS)
def test_lambda_layer_matches_reference(kwargs, shape):
    module = hnn.LambdaLayer(**kwargs).double().eval()
    _randomize_bn_stats(module)
    x = torch.randn(shape, dtype=torch.float64)
    out = module(x)
    assert out.shape == (shape[0], kwargs["out_channels"], *shape[2:])
    torch.testing.assert_close(out, _lambda_reference(module, x))


def test_lambda_layer_parameters_and_state_dict():
    local = hnn.LambdaLayer(4, 8, 3, r=5, num_heads=2, dim_u=2)
    norm_keys = [f"norm_{name}.{key}" for name in ("q", "v") for key in BN_KEYS]
    projections = ["to_q.weight", "to_k.weight", "to_v.weight"]
    assert list(local.state_dict()) == ["R", *projections, *norm_keys]
    assert local.R.shape == (3, 2, 1, 5, 5)
    assert local.pos_emb is None
    assert local.to_q.weight.shape == (6, 4, 1, 1)
    assert local.to_k.weight.shape == (6, 4, 1, 1)
    assert local.to_v.weight.shape == (8, 4, 1, 1)
    glob = hnn.LambdaLayer(4, 8, 3, n=16, num_heads=2)
    assert list(glob.state_dict()) == ["pos_emb", *projections, *norm_keys]
    assert glob.pos_emb.shape == (16, 16, 3, 1)
    assert glob.R is None


# Batch 1 guards the op returning contiguous gradients: torch CPU BatchNorm backward miscomputes for a batch-1
# channels-last grad_output whose batch stride is not C * H * W.
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("kwargs", [{"r": 3}, {"n": 9}])
def test_lambda_layer_gradcheck(kwargs, batch):
    module = hnn.LambdaLayer(2, 4, 2, num_heads=2, dim_u=2, **kwargs).double().eval()
    x = torch.randn(batch, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    name = "R" if "r" in kwargs else "pos_emb"
    position = getattr(module, name).detach().clone().requires_grad_(True)

    def forward(inputs, pos):
        return torch.func.functional_call(module, {name: pos}, (inputs,))

    assert torch.autograd.gradcheck(forward, (x, position), fast_mode=True, raise_exception=False)


@pytest.mark.parametrize(
    ("module", "shape"),
    [
        (hnn.SAM(4), (2, 4, 5, 5)),
        (hnn.TripletAttention(), (2, 4, 5, 6)),
        (hnn.LambdaLayer(4, 8, 4, r=3, num_heads=2), (2, 4, 5, 5)),
        (hnn.LambdaLayer(4, 8, 4, n=20, num_heads=4, dim_u=2), (2, 4, 4, 5)),
    ],
)
def test_attention_script_roundtrip_and_gradients(module, shape, assert_trains_and_scripts):
    assert_trains_and_scripts(module, shape)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"out_channels": 6, "num_heads": 4, "r": 3}, "num_heads"),
        ({"r": 4}, "r"),
        ({}, "n"),
        ({"r": 3, "dim_u": 0}, "dim_u"),
        ({"n": 0}, "n"),
    ],
)
def test_lambda_layer_construction_errors(kwargs, argument):
    arguments = {"in_channels": 4, "out_channels": 8, "dim_k": 4, **kwargs}
    with pytest.raises(AssertionError, match=argument):
        hnn.LambdaLayer(**arguments)
    with pytest.raises(ValueError, match=argument):
        hnn.LambdaLayer(**arguments)


def test_lambda_layer_forward_errors():
    with pytest.raises(ValueError, match="n = 16"):
        hnn.LambdaLayer(4, 8, 4, n=16, num_heads=2)(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="shape"):
        hnn.LambdaLayer(4, 8, 4, r=3, num_heads=2)(torch.randn(1, 3, 5, 5))


def test_sam_errors():
    with pytest.raises(ValueError, match="in_channels"):
        hnn.SAM(0)
