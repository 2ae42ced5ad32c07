"""DropBlock2d: square blocks, the paper's seed rate, rescaling, and no effect outside training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

from holocron import nn as hnn


def _opening(dropped: torch.Tensor, block: int) -> torch.Tensor:
    """Morphological opening by a block x block square (erosion then dilation), on (N, C, H, W) 0/1 maps."""
    padded = TF.pad(dropped, [block - 1] * 4, value=0.0)
    # Top-left corners of squares fully inside the dropped region
    corners = -TF.max_pool2d(-padded, block, stride=1)[..., block - 1 :, block - 1 :]
    corners = corners[..., : dropped.shape[2] - block + 1, : dropped.shape[3] - block + 1]
    return TF.max_pool2d(TF.pad(corners, [block - 1] * 4), block, stride=1)


@pytest.mark.parametrize(("block_size", "shape"), [(3, (2, 3, 12, 12)), (2, (1, 4, 9, 7)), (5, (3, 2, 11, 16))])
def test_dropped_region_is_a_union_of_blocks_and_kept_values_are_rescaled(block_size, shape):
    module = hnn.DropBlock2d(p=0.2, block_size=block_size).train()
    out = module(torch.ones(shape))
    dropped = (out == 0).float()
    assert dropped.sum() > 0
    # A union of block x block squares is unchanged by an opening with that square
    torch.testing.assert_close(_opening(dropped, block_size), dropped)
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, out.numel() / kept.numel()))


def test_masks_differ_across_channels_and_samples():
    out = hnn.DropBlock2d(p=0.3, block_size=3).train()(torch.ones(2, 2, 16, 16))
    masks = (out == 0).reshape(4, -1)
    assert not torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])


def test_drop_rate_follows_p():
    """The seed rate of Eq. (1) of the paper drops close to a fraction p of the activations."""
    p, block_size = 0.1, 3
    out = hnn.DropBlock2d(p=p, block_size=block_size).train()(torch.ones(8, 8, 32, 32))
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 0.02


def test_identity_outside_training_or_without_drop():
    x = torch.randn(2, 3, 8, 8)
    assert hnn.DropBlock2d(0.5, 3).eval()(x) is x
    assert hnn.DropBlock2d(0.0, 3).train()(x) is x


def test_block_larger_than_the_map_and_full_drop():
    module = hnn.DropBlock2d(p=1.0, block_size=7).train()
    out = module(torch.ones(1, 2, 4, 5))
    assert torch.equal(out, torch.zeros_like(out))


def test_inplace_overwrites_input():
    x = torch.ones(2, 2, 10, 10)
    out = hnn.DropBlock2d(0.3, 3, inplace=True).train()(x)
    assert out.data_ptr() == x.data_ptr()
    assert (x == 0).any()


def test_script_roundtrip_matches_eager_in_both_modes(script_roundtrip):
    module = hnn.DropBlock2d(0.25, 3)
    scripted = script_roundtrip(module)
    x = torch.randn(2, 3, 9, 9)
    torch.manual_seed(3)
    expected = module.train()(x)
    torch.manual_seed(3)
    torch.testing.assert_close(scripted.train()(x), expected)
    torch.testing.assert_close(scripted.eval()(x), x)
    assert list(module.state_dict()) == []


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"p": -0.1}, "p"), ({"p": 1.5}, "p"), ({"block_size": 0}, "block_size"), ({"block_size": 2.0}, "block_size")],
)
def test_construction_errors(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        hnn.DropBlock2d(**kwargs)


def test_forward_rejects_non_4d_input():
    with pytest.raises(ValueError, match="shape"):
        hnn.DropBlock2d().train()(torch.randn(3, 8, 8))
