"""holocron.nn.functional: every function compiles with TorchScript and gives the eager result; argument checks."""

from __future__ import annotations

import pytest
import torch

from holocron.nn import functional as F


def _cases():
    x = torch.randn(2, 4, 6, 6)
    logits, hard = torch.randn(3, 4), torch.tensor([0, 3, 1])
    return {
        "hard_mish": (x,),
        "nl_relu": (x, 0.5),
        "focal_loss": (logits, hard, None, -100, "sum", 1.5),
        "multilabel_cross_entropy": (logits, torch.rand(3, 4)),
        "complement_cross_entropy": (logits, hard, torch.rand(4), 1, "none", -0.5),
        "mutual_channel_loss": (torch.randn(3, 8, 2, 2), torch.tensor([0, 1, 3]), None, -100, "mean", 2, 1.0, False),
        "dice_loss": (torch.softmax(logits, 1), hard),
        "poly_loss": (logits, hard, 1.0),
        "norm_conv2d": (x, torch.randn(6, 2, 3, 3), torch.randn(6), (2, 1), 1, 1, 2),
        "add2d": (x, torch.randn(6, 2, 3, 3), None, 1, (1, 0), 2, 2, True),
        "involution2d": (x, torch.randn(2, 18, 3, 3), 3, 2, 1, 1, 2),
        "dropblock2d": (x, 0.3, 3, False, False),
        "concat_downsample2d": (x, 3),
        "z_pool": (x, 2),
    }


def test_every_function_has_a_case():
    assert set(_cases()) == set(F.__all__)


@pytest.mark.parametrize("name", sorted(F.__all__))
def test_function_scripts_and_matches_eager(name):
    args = _cases()[name]
    function = getattr(F, name)
    torch.testing.assert_close(torch.jit.script(function)(*args), function(*args))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: F.norm_conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3), stride=0), "stride"),
        (lambda: F.add2d(torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3), padding=(-1, 0)), "padding"),
        (lambda: F.norm_conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3), dilation=(1, 0)), "dilation"),
        (lambda: F.norm_conv2d(torch.randn(1, 4, 5, 5), torch.randn(3, 2, 3, 3), groups=2), "groups"),
        (lambda: F.focal_loss(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg"), "reduction"),
        (lambda: F.involution2d(torch.randn(1, 4, 5, 5), torch.randn(1, 9, 5, 5), 3, groups=3), "groups"),
        (lambda: F.dropblock2d(torch.randn(1, 1, 4, 4), 2.0, 3), "`p`"),
        (lambda: F.concat_downsample2d(torch.randn(1, 1, 4, 4), 0), "scale_factor"),
    ],
)
def test_argument_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
