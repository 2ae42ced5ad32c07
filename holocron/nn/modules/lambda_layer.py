"""Lambda layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from holocron import ops

from .._upstream_state import UpstreamAttributes, accepts_upstream_state
from .._validation import HolocronArgumentError, check_positive_int

#: Largest global positional embedding (n * n * dim_k * dim_u elements): 2 GiB of float32, the most one ONNX file
#: holds; beyond it the construction alone would allocate terabytes.
MAX_POSITION_ELEMENTS = 1 << 29

__all__ = ["LambdaLayer"]


# Upstream registers only the embedding in use, and no ``padding`` for the global one.
@accepts_upstream_state(UpstreamAttributes(none_parameters=("R", "pos_emb"), attributes={"padding": lambda _: 0}))
class LambdaLayer(nn.Module):
    r"""Lambda layer from `LambdaNetworks: Modeling long-range interactions without
    attention <https://openreview.net/pdf?id=xTJEN-ggl1b>`_. The implementation was adapted from
    `lucidrains <https://github.com/lucidrains/lambda-networks/blob/main/lambda_networks/lambda_networks.py>`_.

    Queries :math:`q` (``num_heads * dim_k`` channels, batch-normalized), keys :math:`k` (``dim_k * dim_u`` channels,
    softmax over the positions) and values :math:`v` (``dim_v * dim_u`` channels, batch-normalized, ``dim_v =
    out_channels / num_heads``) are 1x1 projections of the input. Each position :math:`n` gets the linear function
    (lambda) :math:`\lambda_n = \lambda^c + \lambda^p_n`, made of the content lambda
    :math:`\lambda^c = \sum_{u, m} k_{u, m} v_{u, m}^T` and the position lambda, either from a local context of side
    ``r`` (a 2D convolution of the values with the relative embedding ``R``) or from the global embedding ``pos_emb``
    over all ``n = H * W`` positions. Each head outputs :math:`y_n = \lambda_n^T q_n`. The computation after the
    projections is done by the custom op ``torch.ops.holocron.lambda_layer``.

    Args:
        in_channels: input channels
        out_channels: output channels
        dim_k: key dimension
        n: number of input pixels (H * W), for the global positional embedding
        r: receptive field for relative positional encoding (odd); takes precedence over ``n``
        num_heads: number of attention heads
        dim_u: intra-depth dimension
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dim_k: int,
        n: int | None = None,
        r: int | None = None,
        num_heads: int = 4,
        dim_u: int = 1,
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(dim_k, "dim_k")
        check_positive_int(num_heads, "num_heads")
        check_positive_int(dim_u, "dim_u")
        self.u: int = dim_u
        self.num_heads: int = num_heads

        if out_channels % num_heads != 0:
            raise HolocronArgumentError(
                f"values dimension must be divisible by number of heads for multi-head query: argument `out_channels`"
                f" ({out_channels}) is not divisible by `num_heads` ({num_heads})"
            )
        dim_v = out_channels // num_heads

        # Project input and context to get queries, keys & values
        self.to_q = nn.Conv2d(in_channels, dim_k * num_heads, 1, bias=False)
        self.to_k = nn.Conv2d(in_channels, dim_k * dim_u, 1, bias=False)
        self.to_v = nn.Conv2d(in_channels, dim_v * dim_u, 1, bias=False)

        self.norm_q = nn.BatchNorm2d(dim_k * num_heads)
        self.norm_v = nn.BatchNorm2d(dim_v * dim_u)

        self.local_contexts: bool = r is not None
        # Exactly one of R / pos_emb is a parameter; the other is registered as None (absent from the state_dict).
        if r is not None:
            check_positive_int(r, "r")
            if r % 2 != 1:
                raise HolocronArgumentError(f"Receptive kernel size should be odd: argument `r` received {r}")
            self.padding: int = r // 2
            self.R = nn.Parameter(torch.randn(dim_k, dim_u, 1, r, r))
            self.register_parameter("pos_emb", None)
        else:
            if n is None:
                raise HolocronArgumentError(
                    "You must specify the total sequence length (h x w): argument `n` or `r` is required"
                )
            check_positive_int(n, "n")
            if n * n * dim_k * dim_u > MAX_POSITION_ELEMENTS:
                raise HolocronArgumentError(
                    f"the global positional embedding has n * n * dim_k * dim_u = {n * n * dim_k * dim_u} elements, "
                    f"more than {MAX_POSITION_ELEMENTS} (2 GiB of float32, an ONNX file's limit): argument `n` "
                    f"received {n}; use local contexts (`r`) for large inputs"
                )
            self.padding = 0
            self.pos_emb = nn.Parameter(torch.randn(n, n, dim_k, dim_u))
            self.register_parameter("R", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.to_q.in_channels:
            raise ValueError(
                f"input is expected to have shape (N, {self.to_q.in_channels}, H, W), received shape {x.shape}"
            )
        position = self.R
        if position is None:
            position = self.pos_emb
            assert position is not None  # for TorchScript: one of R / pos_emb is always set
            if x.shape[2] * x.shape[3] != position.shape[0]:
                raise ValueError(
                    f"input has {x.shape[2]} x {x.shape[3]} positions, the global embedding was built for"
                    f" n = {position.shape[0]}"
                )
        q = self.norm_q(self.to_q(x))
        v = self.norm_v(self.to_v(x))
        return ops.lambda_layer(q, self.to_k(x), v, position, self.num_heads)
