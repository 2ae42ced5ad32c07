"""Regularization layers."""

from typing import Any

from torch import Tensor, nn

from .. import functional as F
from .._validation import check_in_range, check_positive_int

__all__ = ["DropBlock2d"]


class DropBlock2d(nn.Module):
    r"""Implements the DropBlock module from `DropBlock: A regularization method for convolutional
    networks <https://arxiv.org/pdf/1810.12890.pdf>`_

    In training mode, square blocks of activations are zeroed in every feature map, seeded with the probability
    :math:`\gamma = \frac{p}{b^2} \frac{H W}{(H - b + 1)(W - b + 1)}` of Eq. (1) of the paper so that a fraction ``p``
    of the activations is dropped, and the kept ones are rescaled; in evaluation mode the input passes unchanged. See
    :func:`holocron.nn.functional.dropblock2d`.

    Args:
        p: probability of dropping activation value
        block_size: size of each block that is expended from the sampled mask
        inplace: whether the operation should be done inplace
    """

    # Kept as given, for a repr like the reference layer's; the class annotation makes TorchScript hold a float.
    p: float

    def __init__(self, p: float = 0.1, block_size: int = 7, inplace: bool = False) -> None:
        super().__init__()
        check_in_range(p, "p", 0.0, 1.0)
        check_positive_int(block_size, "block_size")
        self.p = p
        self.block_size: int = block_size
        self.inplace: bool = inplace

    def __getattr__(self, name: str) -> Any:
        if name == "drop_prob":
            # Upstream's property held p / block_size ** 2, which its module passed as the functional's drop
            # probability (so that it dropped about p / block_size ** 2 of the activations, not p).
            raise AttributeError(
                "DropBlock2d.drop_prob was removed: upstream's value (p / block_size ** 2) was the seed rate its "
                "functional divided by block_size ** 2 again, so it dropped far fewer activations than `p`. This "
                "module drops a fraction `p` of the activations in training: read or set `p` instead."
            )
        return super().__getattr__(name)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropblock2d(x, self.p, self.block_size, self.inplace, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}, inplace={self.inplace}"
