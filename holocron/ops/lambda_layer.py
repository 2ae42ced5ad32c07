"""``torch.ops.holocron.lambda_layer``: the lambda of `LambdaNetworks <https://openreview.net/pdf?id=xTJEN-ggl1b>`_.

Queries, keys and values come in as feature maps (the layer's 1x1 projections and batch norms stay outside the op);
the op turns the keys into a content lambda and the values into position lambdas, local (a ``r x r`` relative kernel,
as a 3-D convolution) or global (a dense ``H*W x H*W`` embedding), and applies both to the queries. Plain torch ops,
with an explicit backward (an op of its own, ``holocron::_lambda_layer_backward``).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from holocron.contract import LAMBDA
from holocron.ops._library import define_op
from holocron.ops._window import check_floating, check_rank

__all__ = ["lambda_layer"]

_OP = LAMBDA.torch_name


def _dims(q: Tensor, k: Tensor, v: Tensor, pos: Tensor, num_heads: int) -> tuple[int, int, int]:
    """Validate the arguments of ``lambda_layer`` and return ``(dim_k, dim_u, dim_v)``."""
    check_rank(_OP, "q", q, 4, "(N, heads * dim_k, H, W)")
    check_rank(_OP, "k", k, 4, "(N, dim_k * dim_u, H, W)")
    check_rank(_OP, "v", v, 4, "(N, dim_v * dim_u, H, W)")
    check_floating(_OP, "q", {"q": q, "k": k, "v": v, "pos": pos})
    batch, height, width = q.shape[0], q.shape[2], q.shape[3]
    for name, tensor in (("k", k), ("v", v)):
        if (tensor.shape[0], tensor.shape[2], tensor.shape[3]) != (batch, height, width):
            raise ValueError(
                f"{_OP}: `{name}` must have the batch and spatial size of `q` (N, H, W) = {(batch, height, width)}; "
                f"got shape {tuple(tensor.shape)}"
            )
    LAMBDA.attribute("num_heads").check(_OP, num_heads, "num_heads")
    if q.shape[1] % num_heads != 0:
        raise ValueError(f"{_OP}: `num_heads` must divide the {q.shape[1]} channels of `q`; got {num_heads}")
    dim_k = q.shape[1] // num_heads
    if k.shape[1] % dim_k != 0:
        raise ValueError(f"{_OP}: `k` channels must be a multiple of dim_k = {dim_k}; got {k.shape[1]}")
    dim_u = k.shape[1] // dim_k
    if v.shape[1] % dim_u != 0:
        raise ValueError(f"{_OP}: `v` channels must be a multiple of dim_u = {dim_u}; got {v.shape[1]}")
    if pos.dim() == 5:
        r = pos.shape[-1]
        if tuple(pos.shape[:3]) != (dim_k, dim_u, 1) or pos.shape[3] != r or r % 2 != 1:
            raise ValueError(
                f"{_OP}: local `pos` must have shape (dim_k, dim_u, 1, r, r) = ({dim_k}, {dim_u}, 1, r, r) with r odd; "
                f"got {tuple(pos.shape)}"
            )
    elif pos.dim() == 4:
        positions = height * width
        if tuple(pos.shape) != (positions, positions, dim_k, dim_u):
            raise ValueError(
                f"{_OP}: global `pos` must have shape (H * W, H * W, dim_k, dim_u) = "
                f"{(positions, positions, dim_k, dim_u)}; got {tuple(pos.shape)}"
            )
    else:
        raise ValueError(f"{_OP}: `pos` must have rank 5 (local R) or rank 4 (global E); got shape {tuple(pos.shape)}")
    return dim_k, dim_u, v.shape[1] // dim_u


def _operands(q: Tensor, k: Tensor, v: Tensor, pos: Tensor, num_heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """Queries ``(N, heads, K, HW)``, softmaxed keys ``(N, K, U, HW)`` and values ``(N, V, U, HW)``."""
    dim_k, dim_u, dim_v = _dims(q, k, v, pos, num_heads)
    batch, positions = q.shape[0], q.shape[2] * q.shape[3]
    queries = q.reshape(batch, num_heads, dim_k, positions)
    keys = k.reshape(batch, dim_k, dim_u, positions).softmax(dim=-1)
    values = v.reshape(batch, dim_v, dim_u, positions)
    return queries, keys, values


def _values_volume(values: Tensor, height: int, width: int) -> Tensor:
    """Values as the channels-first volume ``(N, U, V, H, W)`` the local position lambda convolves."""
    return values.view(values.shape[0], values.shape[1], values.shape[2], height, width).transpose(1, 2)


def _lambdas(keys: Tensor, values: Tensor, pos: Tensor, height: int, width: int) -> Tensor:
    """Content plus position lambdas, ``(N, K, V, HW)``."""
    content = torch.einsum("nkum,nvum->nkv", keys, values)
    if pos.dim() == 5:
        pad = pos.shape[-1] // 2
        position = F.conv3d(_values_volume(values, height, width), pos, padding=(0, pad, pad))  # (N, K, V, H, W)
        position = position.flatten(3)
    else:
        position = torch.einsum("pmku,nvum->nkvp", pos, values)
    return content.unsqueeze(-1) + position


def _output_shape(q: Tensor, k: Tensor, v: Tensor, pos: Tensor, num_heads: int) -> tuple[int, ...]:
    """Validate the arguments of :func:`lambda_layer` and return the output shape ``(N, num_heads * dim_v, H, W)``."""
    _, _, dim_v = _dims(q, k, v, pos, num_heads)
    return q.shape[0], num_heads * dim_v, q.shape[2], q.shape[3]


def _forward(q: Tensor, k: Tensor, v: Tensor, pos: Tensor, num_heads: int) -> Tensor:
    """Eager kernel of ``holocron::lambda_layer``."""
    queries, keys, values = _operands(q, k, v, pos, num_heads)
    lambdas = _lambdas(keys, values, pos, q.shape[2], q.shape[3])
    out = torch.einsum("nhkp,nkvp->nhvp", queries, lambdas)  # may come back as a permuted view
    return out.contiguous().view(q.shape[0], -1, q.shape[2], q.shape[3])


def _backward(
    grad_output: Tensor, q: Tensor, k: Tensor, v: Tensor, pos: Tensor, num_heads: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Eager kernel of ``holocron::_lambda_layer_backward``: the gradients w.r.t. ``q, k, v, pos``.

    The chain rule through ``Y = Q . (Lc + Lp)``, the content lambda, the key softmax and the (local or global)
    position lambda.
    """
    height, width = q.shape[2], q.shape[3]
    queries, keys, values = _operands(q, k, v, pos, num_heads)
    lambdas = _lambdas(keys, values, pos, height, width)
    grad_y = grad_output.reshape(queries.shape[0], queries.shape[1], -1, queries.shape[3])  # (N, heads, V, HW)
    grad_q = torch.einsum("nhvp,nkvp->nhkp", grad_y, lambdas).reshape(q.shape)
    grad_lambdas = torch.einsum("nhkp,nhvp->nkvp", queries, grad_y)
    grad_content = grad_lambdas.sum(dim=-1)
    grad_keys = torch.einsum("nkv,nvum->nkum", grad_content, values)
    grad_k = (keys * (grad_keys - (grad_keys * keys).sum(dim=-1, keepdim=True))).reshape(k.shape)
    grad_values = torch.einsum("nkv,nkum->nvum", grad_content, keys)
    if pos.dim() == 5:
        pad = pos.shape[-1] // 2
        grad_position = grad_lambdas.reshape(*grad_lambdas.shape[:3], height, width)  # (N, K, V, H, W)
        grad_volume = F.conv_transpose3d(grad_position, pos, padding=(0, pad, pad))  # (N, U, V, H, W)
        grad_values = grad_values + grad_volume.transpose(1, 2).reshape(grad_values.shape)
        volume = _values_volume(values, height, width)
        weight_grad = torch.nn.grad.conv3d_weight  # type: ignore[attr-defined]
        grad_pos = weight_grad(volume, list(pos.shape), grad_position, padding=(0, pad, pad))
    else:
        grad_values = grad_values + torch.einsum("pmku,nkvp->nvum", pos, grad_lambdas)
        grad_pos = torch.einsum("nkvp,nvum->pmku", grad_lambdas, values)
    return grad_q.contiguous(), grad_k.contiguous(), grad_values.reshape(v.shape).contiguous(), grad_pos.contiguous()


def lambda_layer(q: Tensor, k: Tensor, v: Tensor, pos: Tensor, num_heads: int) -> Tensor:
    r"""Lambda layer core: content and position lambdas built from keys and values, applied to the queries.

    .. math::

        Y[n, h V + v, p] = \sum_k Q[n, h K + k, p] \left(\sum_{u, m} \sigma(K)[n, k, u, m] V[n, v, u, m]
        + L^{pos}[n, k, v, p]\right)

    with :math:`\sigma` the softmax over the positions :math:`m` and :math:`L^{pos}` the position lambda from
    ``pos`` (see the note below), from
    `LambdaNetworks: Modeling long-range interactions without attention <https://openreview.net/pdf?id=xTJEN-ggl1b>`_.

    Args:
        q: normalized queries ``(N, num_heads * dim_k, H, W)``, channel ``h * dim_k + k``.
        k: keys before the softmax ``(N, dim_k * dim_u, H, W)``, channel ``k * dim_u + u``.
        v: normalized values ``(N, dim_v * dim_u, H, W)``, channel ``v * dim_u + u``.
        pos: local relative kernel ``R`` of shape ``(dim_k, dim_u, 1, r, r)`` with ``r`` odd (rank 5), or global
            embedding ``E`` of shape ``(H * W, H * W, dim_k, dim_u)`` (rank 4).
        num_heads: number of query heads (ONNX ``num_heads``), >= 1; divides the channels of ``q``.

    Returns:
        ``(N, num_heads * dim_v, H, W)``, channel ``h * dim_v + v``.

    Raises:
        ValueError: a shape or rank does not fit, or ``num_heads`` is outside its attribute's range in
            :mod:`holocron.contract` (the message names the argument and the expected value).
        TypeError: the tensors are not floating point or disagree in dtype or device.
    """
    return torch.ops.holocron.lambda_layer(q, k, v, pos, num_heads)


define_op(LAMBDA, lambda_layer, _forward, _output_shape, _backward)
