"""Loss functions and loss wrappers."""

from typing import Any

import torch
from torch import Tensor, nn

from .. import functional as F
from .._upstream_state import UpstreamAttributes, accepts_upstream_state
from .._validation import HolocronArgumentError, check_in_range, check_positive, check_positive_int

__all__ = [
    "ClassBalancedWrapper",
    "ComplementCrossEntropy",
    "DiceLoss",
    "FocalLoss",
    "Loss",
    "MultiLabelCrossEntropy",
    "MutualChannelLoss",
    "PolyLoss",
]


# Upstream keeps a missing weight (and, before 0.2, every weight) in a plain attribute.
@accepts_upstream_state(UpstreamAttributes(plain_buffers=("weight",)))
class Loss(nn.Module):
    """Base loss class.

    The class weights are kept in the buffer ``weight``, so that they follow the module across devices and dtypes and
    are saved in its ``state_dict``. Without weights it is a non-persistent ``None`` buffer: weights set later (as
    :class:`ClassBalancedWrapper` does) follow the module but stay out of the ``state_dict``, where upstream kept
    them in a plain attribute.

    Args:
        weight: class weight for loss computation: a float ``w`` (binary weights ``[w, 1 - w]``), a list of floats or
            a tensor of shape (K,)
        ignore_index: specifies target value that is ignored and do not contribute to gradient
        reduction: type of reduction to apply to the final loss: 'none', 'mean' or 'sum'

    Raises:
        NotImplementedError: if the reduction method is not supported
    """

    def __init__(
        self,
        weight: float | list[float] | Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if isinstance(weight, bool):
            raise TypeError("argument `weight` is expected to be a float, a list of floats, a Tensor or None")
        if isinstance(weight, (float, int)):
            self.register_buffer("weight", torch.tensor([weight, 1 - weight], dtype=torch.float32))
        elif isinstance(weight, list):
            self.register_buffer("weight", torch.tensor(weight, dtype=torch.float32))
        elif isinstance(weight, Tensor):
            self.register_buffer("weight", weight)
        elif weight is None:
            self.register_buffer("weight", None, persistent=False)
        else:
            raise TypeError(
                f"argument `weight` is expected to be a float, a list of floats, a Tensor or None, received {weight!r}"
            )
        if self.weight is not None and self.weight.dim() != 1:  # type: ignore[operator]
            raise HolocronArgumentError(
                f"argument `weight` is expected to hold one weight per class (1D), received shape {self.weight.shape}"
            )
        self.ignore_index: int = ignore_index
        if reduction not in {"none", "mean", "sum"}:
            raise NotImplementedError(
                f"argument reduction received an incorrect input: {reduction!r} (expected 'none', 'mean' or 'sum')"
            )
        self.reduction: str = reduction


class FocalLoss(Loss):
    r"""Implementation of Focal Loss as described in
    `Focal Loss for Dense Object Detection <https://arxiv.org/pdf/1708.02002.pdf>`_.

    While the weighted cross-entropy is described by:

    .. math::

        CE(p_t) = -\alpha_t log(p_t)

    where :math:`\alpha_t` is the loss weight of class :math:`t`,
    and :math:`p_t` is the predicted probability of class :math:`t`.

    the focal loss introduces a modulating factor

    .. math::

        FL(p_t) = -\alpha_t (1 - p_t)^\gamma log(p_t)

    where :math:`\gamma` is a positive focusing parameter. See :func:`holocron.nn.functional.focal_loss`.

    Args:
        gamma: exponent parameter of the focal loss (>= 0)
        **kwargs: keyword args of :class:`~holocron.nn.modules.loss.Loss`
    """

    # Kept as given, for a repr like the reference layer's; the class annotation makes TorchScript hold a float.
    gamma: float

    def __init__(self, gamma: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_in_range(gamma, "gamma", 0.0, float("inf"))
        self.gamma = gamma

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return F.focal_loss(x, target, self.weight, self.ignore_index, self.reduction, self.gamma)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction='{self.reduction}'"


class MultiLabelCrossEntropy(Loss):
    """Implementation of the cross-entropy loss for multi-label targets.

    See :func:`holocron.nn.functional.multilabel_cross_entropy`.

    Args:
        *args: args of :class:`~holocron.nn.modules.loss.Loss`
        **kwargs: keyword args of :class:`~holocron.nn.modules.loss.Loss`
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_cross_entropy(x, target, self.weight, self.ignore_index, self.reduction)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"reduction='{self.reduction}'"


class ComplementCrossEntropy(Loss):
    """Implements the complement cross entropy loss from
    `Imbalanced Image Classification with Complement Cross Entropy <https://arxiv.org/pdf/2009.02189.pdf>`_

    See :func:`holocron.nn.functional.complement_cross_entropy`.

    Args:
        gamma: smoothing factor
        **kwargs: keyword args of :class:`~holocron.nn.modules.loss.Loss`
    """

    # Kept as given, for a repr like the reference layer's; the class annotation makes TorchScript hold a float.
    gamma: float

    def __init__(self, gamma: float = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gamma = gamma

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return F.complement_cross_entropy(x, target, self.weight, self.ignore_index, self.reduction, self.gamma)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction='{self.reduction}'"


class ClassBalancedWrapper(nn.Module):
    r"""Implementation of the class-balanced loss as described in `Class-Balanced Loss Based on Effective Number
    of Samples <https://arxiv.org/pdf/1901.05555.pdf>`_.

    Given a loss function :math:`\mathcal{L}`, the class-balanced loss is described by:

    .. math::

        CB(p, y) = \frac{1 - \beta}{1 - \beta^{n_y}} \mathcal{L}(p, y)

    where :math:`p` is the predicted probability for class :math:`y`, :math:`n_y` is the number of training
    samples for class :math:`y`, and :math:`\beta` is exponential factor.

    The factors become (or multiply) the class weights ``criterion.weight``, which is why the criterion must have a
    ``weight`` attribute (``None`` or a tensor of shape (K,)), as the losses of this module and
    :class:`torch.nn.CrossEntropyLoss` do. As with upstream, ``criterion.weight`` is in the ``state_dict`` when the
    criterion saves its weights (it had weights, or it is one of torch's losses) and not for a loss of this module
    constructed without weights; the factors are recomputed from ``num_samples`` at construction either way.

    Args:
        criterion: loss module
        num_samples: number of samples for each class
        beta: rebalancing exponent, in [0, 1)
    """

    def __init__(self, criterion: nn.Module, num_samples: Tensor, beta: float = 0.99) -> None:
        super().__init__()
        if not hasattr(criterion, "weight"):
            raise TypeError(
                f"argument `criterion` is expected to have a `weight` attribute, {type(criterion).__name__} has none"
            )
        if not isinstance(num_samples, Tensor) or num_samples.dim() != 1:
            raise TypeError("argument `num_samples` is expected to be a 1D Tensor with one count per class")
        if bool((num_samples <= 0).any()):
            raise HolocronArgumentError("argument `num_samples` is expected to hold positive counts")
        check_in_range(beta, "beta", 0.0, 1.0, high_inclusive=False)
        self.criterion = criterion
        self.beta: float = beta
        cb_weights = (1 - beta) / (1 - beta ** num_samples.to(torch.float64))
        current = self.criterion.weight
        if current is None:
            cb_weights = cb_weights.to(torch.float32)
            if "weight" in self.criterion._buffers:
                # Keeps the buffer's persistence: saved for torch's losses, not for ours (as upstream's wrapper).
                self.criterion.weight = cb_weights
            else:
                # A plain `None` attribute: a buffer follows the criterion's device; non-persistent, as upstream
                # leaves it out of the state_dict.
                delattr(self.criterion, "weight")
                self.criterion.register_buffer("weight", cb_weights, persistent=False)
        else:
            if not isinstance(current, Tensor) or current.shape != cb_weights.shape:
                raise HolocronArgumentError(
                    f"`criterion.weight` is expected to have shape {tuple(cb_weights.shape)} like `num_samples`"
                )
            current.mul_(cb_weights.to(device=current.device, dtype=current.dtype))

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return self.criterion(x, target)

    def __repr__(self) -> str:
        # One line, the criterion inline, as the reference layer prints it (not the nested module tree).
        return f"{self.__class__.__name__}({self.criterion!r}, beta={self.beta})"


# Upstream's 0.1 releases named ``xi`` ``chi``.
@accepts_upstream_state(UpstreamAttributes(renamed={"chi": "xi"}, plain_buffers=("weight",)))
class MutualChannelLoss(Loss):
    """Implements the mutual channel loss from
    `The Devil is in the Channels: Mutual-Channel Loss for Fine-Grained Image
    Classification <https://arxiv.org/pdf/2002.04264.pdf>`_.

    The random channel-wise attention of the discriminality term is applied in training mode only. See
    :func:`holocron.nn.functional.mutual_channel_loss`.

    Args:
        weight: class weight for loss computation
        ignore_index: specifies target value that is ignored and do not contribute to gradient
        reduction: type of reduction to apply to the final loss
        xi: num of features per class
        alpha: diversity factor
    """

    # Kept as given, for a repr like the reference layer's; the class annotation makes TorchScript hold a float.
    alpha: float

    def __init__(
        self,
        weight: float | list[float] | Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        xi: int = 2,
        alpha: float = 1,
    ) -> None:
        super().__init__(weight, ignore_index, reduction)
        check_positive_int(xi, "xi")
        self.xi: int = xi
        self.alpha = alpha

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return F.mutual_channel_loss(
            x,
            target,
            self.weight,  # type: ignore[arg-type]
            self.ignore_index,
            self.reduction,
            self.xi,
            self.alpha,
            self.training,
        )

    def extra_repr(self) -> str:
        return f"reduction='{self.reduction}', xi={self.xi}, alpha={self.alpha}"


class DiceLoss(Loss):
    """Implements the dice loss from `V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image
    Segmentation <https://arxiv.org/pdf/1606.04797.pdf>`_.

    See :func:`holocron.nn.functional.dice_loss`.

    Args:
        weight: class weight for loss computation
        gamma: recall/precision control param (> 0)
        eps: small value added to avoid division by zero
    """

    # Kept as given, for a repr like the reference layer's; the class annotation makes TorchScript hold a float.
    gamma: float
    eps: float

    def __init__(
        self,
        weight: float | list[float] | Tensor | None = None,
        gamma: float = 1.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(weight)
        check_positive(gamma, "gamma")
        check_in_range(eps, "eps", 0.0, float("inf"))
        self.gamma = gamma
        self.eps = eps

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return F.dice_loss(x, target, self.weight, self.gamma, self.eps)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"reduction='{self.reduction}', gamma={self.gamma}, eps={self.eps}"


class PolyLoss(Loss):
    """Implements the Poly1 loss from `PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions <https://arxiv.org/pdf/2204.12511.pdf>`_.

    Takes logits of shape (N, K, ...) and either class indices of shape (N, ...) or target probabilities of the
    shape of the logits. See :func:`holocron.nn.functional.poly_loss`.

    Args:
        *args: args of :class:`~holocron.nn.modules.loss.Loss`
        eps: epsilon 1 from the paper
        **kwargs: keyword args of :class:`~holocron.nn.modules.loss.Loss`
    """

    # Kept as given, for a repr like the reference layer's; the class annotation makes TorchScript hold a float.
    eps: float

    def __init__(
        self,
        *args: Any,
        eps: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return F.poly_loss(x, target, self.eps, self.weight, self.ignore_index, self.reduction)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction='{self.reduction}'"
