"""Constructor bounds that keep a small argument from a huge allocation or an unexportable model: LambdaLayer's
global positional embedding, Add2d's attributes against the op contract (2^24)."""

from __future__ import annotations

import time

import pytest

from holocron import nn as hnn
from holocron.contract import MAX_ATTRIBUTE_VALUE


def test_lambda_layer_refuses_a_terabyte_embedding_at_once() -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"argument `n` received 1048576"):
        hnn.LambdaLayer(4, 8, 3, n=2**20, num_heads=2)
    assert time.perf_counter() - start < 1.0
    assert hnn.LambdaLayer(4, 8, 3, n=16, num_heads=2).pos_emb.shape == (16, 16, 3, 1)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"stride": 2**40}, "stride"), ({"dilation": (1, MAX_ATTRIBUTE_VALUE + 1)}, "dilation"),
     ({"padding": 2**30}, "padding")],
)  # fmt: skip
def test_add2d_refuses_attributes_beyond_the_contract(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=f"`{argument}` must be 2 ints, each in"):
        hnn.Add2d(2, 2, 3, **kwargs)


def test_add2d_accepts_the_contract_bound() -> None:
    layer = hnn.Add2d(2, 2, 3, stride=MAX_ATTRIBUTE_VALUE)
    assert layer.stride == (MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTE_VALUE)
