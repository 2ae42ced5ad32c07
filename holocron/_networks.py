"""Reference networks built from holocron's layers, shared by the tests and the benchmarks (private, not public API).

Three published architectures whose spatial layers are holocron custom ops, written from the papers:

* :func:`addernet_resnet20`: AdderNet ResNet-20 for CIFAR (:class:`~holocron.nn.Add2d`);
* :func:`rednet26`: RedNet-26 (:class:`~holocron.nn.Involution2d`);
* :func:`lambda_resnet26`: LambdaResNet-26 (:class:`~holocron.nn.LambdaLayer`).

Each builder is deterministic given its ``seed`` (the global RNG is left untouched) and returns a fresh network in
eval mode whose BatchNorms have their default statistics; :func:`calibrate_batchnorm` gives them the statistics a
trained network has. :data:`NETWORKS` lists the three with a small test input and the arguments of a narrow, fast
variant, so that the tests and the benchmarks iterate over the same set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from holocron.nn import Add2d, Involution2d, LambdaLayer
from holocron.nn._validation import HolocronArgumentError, check_non_negative_int, check_positive_int

__all__ = [
    "NETWORKS",
    "NetworkSpec",
    "addernet_resnet20",
    "calibrate_batchnorm",
    "lambda_resnet26",
    "rednet26",
]

#: Blocks per stage of the ResNet-26 bottleneck layout.
_RESNET26_LAYOUT: tuple[int, int, int, int] = (1, 2, 4, 1)
_EXPANSION = 4


class _BranchEndNorm(nn.BatchNorm2d):
    """The BatchNorm that closes a residual branch, just before the sum with the shortcut.

    A plain :class:`torch.nn.BatchNorm2d`; the type lets :func:`calibrate_batchnorm` give it the small scale such
    layers have in trained residual networks.
    """


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Run the block under ``torch.manual_seed(seed)`` without disturbing the caller's CPU RNG (no-op for None)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, relu: bool = True
) -> list[nn.Module]:
    """A bias-free ``kernel_size`` convolution (same padding) followed by BatchNorm and optionally ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


# --------------------------------------------------------------------------------------------------------------------
# AdderNet ResNet-20
# --------------------------------------------------------------------------------------------------------------------


class _AdderBasicBlock(nn.Module):
    """ResNet basic block with adder layers: ``Add2d 3x3 - BN - ReLU - Add2d 3x3 - BN``, plus the shortcut, then ReLU.

    The shortcut is the identity, or ``Add2d 1x1`` (or ``Conv2d 1x1`` when ``adder_shortcut`` is False) of stride
    ``stride`` followed by BatchNorm when the block changes the resolution or the width.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, adder_shortcut: bool) -> None:
        super().__init__()
        self.add1 = Add2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.add2 = Add2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = _BranchEndNorm(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            projection: nn.Module = (
                Add2d(in_channels, out_channels, 1, stride=stride, bias=False)
                if adder_shortcut
                else nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            )
            self.shortcut = nn.Sequential(projection, nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.add1(x)))
        out = self.bn2(self.add2(out))
        return self.relu(out + self.shortcut(x))


class _StagedClassifier(nn.Module):
    """``stem``, then the ``blocks`` in sequence (as ``stages``), global average pooling and a linear classifier of
    the ``channels`` the last block outputs."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def _block_strides(layout: Sequence[int]) -> Iterator[tuple[int, int]]:
    """``(stage index, stride)`` of each block of stages of ``layout[index]`` blocks: stride 2 in the first block of
    every stage but the first, 1 elsewhere."""
    for index, depth in enumerate(layout):
        for block in range(depth):
            yield index, 2 if index > 0 and block == 0 else 1


class _AdderResNet(_StagedClassifier):
    """Stem, three stages of adder basic blocks, global average pooling and a linear classifier."""

    def __init__(self, num_classes: int, width: int, blocks_per_stage: int, adder_shortcut: bool) -> None:
        stem = nn.Sequential(*_conv_bn(3, width, 3))
        blocks: list[nn.Module] = []
        in_channels = width
        for index, stride in _block_strides((blocks_per_stage,) * 3):
            out_channels = width * 2**index
            blocks.append(_AdderBasicBlock(in_channels, out_channels, stride, adder_shortcut))
            in_channels = out_channels
        super().__init__(stem, blocks, in_channels, num_classes)


def addernet_resnet20(
    num_classes: int = 10, width: int = 16, adder_shortcut: bool = True, seed: int | None = 0
) -> nn.Module:
    """AdderNet ResNet-20 for ``(N, 3, 32, 32)`` CIFAR images, from `AdderNet: Do We Really Need Multiplications in
    Deep Learning? <https://arxiv.org/abs/1912.13200>`_.

    Layout (channels x height x width for a 32 x 32 input): a 3x3 ``Conv2d`` stem with BatchNorm and ReLU (the paper
    keeps the first and the last layers multiplicative), 16 x 32 x 32; three stages of 3 basic blocks
    ``Add2d 3x3 - BN - ReLU - Add2d 3x3 - BN`` + shortcut, ReLU, of 16, 32 and 64 channels (stride 2 in the first
    block of stages 2 and 3), down to 64 x 8 x 8; global average pooling and a ``Linear`` classifier. The shortcut of
    a downsampling block is a 1x1 adder layer (or convolution) of stride 2 with BatchNorm. The adder layers have no
    bias (BatchNorm follows each). 18 :class:`~holocron.nn.Add2d` 3x3 and 2 :class:`~holocron.nn.Add2d` 1x1 layers.

    Args:
        num_classes: number of output classes.
        width: channels of the stem and the first stage (16 in the paper); the stages have ``width``, ``2 width`` and
            ``4 width`` channels.
        adder_shortcut: whether the downsampling shortcuts are ``Add2d 1x1`` (True) or ``Conv2d 1x1`` (False).
        seed: seed of the parameter initialisation (None: the caller's RNG state).

    Returns:
        The network, in eval mode, with default BatchNorm statistics (see :func:`calibrate_batchnorm`).
    """
    check_positive_int(num_classes, "num_classes")
    check_positive_int(width, "width")
    with _seeded(seed):
        model = _AdderResNet(num_classes, width, 3, adder_shortcut)
    return model.eval()


# --------------------------------------------------------------------------------------------------------------------
# ResNet-26 bottleneck networks (RedNet-26, LambdaResNet-26)
# --------------------------------------------------------------------------------------------------------------------


class _Bottleneck(nn.Module):
    """ResNet bottleneck whose 3x3 convolution is ``spatial``: ``1x1 - BN - ReLU - spatial - BN - ReLU - 1x1 - BN``
    plus the shortcut (identity, or strided ``Conv2d 1x1`` + BN when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, mid_channels: int, stride: int, spatial: nn.Module) -> None:
        super().__init__()
        out_channels = mid_channels * _EXPANSION
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.spatial = spatial
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = _BranchEndNorm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(*_conv_bn(in_channels, out_channels, 1, stride, relu=False))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.spatial(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class _BottleneckResNet(_StagedClassifier):
    """``stem`` (output ``base_width`` channels at 1/4 resolution), four bottleneck stages of ``base_width * 2 **
    index`` middle channels (stride 2 in the first block of stages 2 to 4), average pooling and a linear classifier.

    ``spatial(channels, stride, resolution)`` builds the spatial layer of a block, ``resolution`` being the side of
    its input (``None`` when the input size is unknown).
    """

    def __init__(
        self,
        stem: nn.Module,
        base_width: int,
        layout: Sequence[int],
        num_classes: int,
        spatial: Callable[[int, int, int | None], nn.Module],
        input_size: int | None,
    ) -> None:
        blocks: list[nn.Module] = []
        in_channels = base_width
        resolution = None if input_size is None else _after_stride(_after_stride(input_size))
        for index, stride in _block_strides(layout):
            mid_channels = base_width * 2**index
            blocks.append(_Bottleneck(in_channels, mid_channels, stride, spatial(mid_channels, stride, resolution)))
            in_channels = mid_channels * _EXPANSION
            if stride == 2 and resolution is not None:
                resolution = _after_stride(resolution)
        super().__init__(stem, blocks, in_channels, num_classes)


def _after_stride(size: int) -> int:
    """Side after a 3x3 window of stride 2 and padding 1 (the stems' convolutions and pools, the strided blocks)."""
    return (size - 1) // 2 + 1


def _check_resnet26_args(num_classes: int, base_width: int) -> None:
    check_positive_int(num_classes, "num_classes")
    check_positive_int(base_width, "base_width")


def rednet26(
    num_classes: int = 1000,
    base_width: int = 64,
    kernel_size: int = 7,
    group_channels: int = 16,
    reduction_ratio: int = 4,
    seed: int | None = 0,
) -> nn.Module:
    """RedNet-26 for ``(N, 3, H, W)`` images (224 x 224 by default, any side that is a multiple of 32 works), from
    `Involution: Inverting the Inherence of Convolution for Visual Recognition <https://arxiv.org/abs/2103.06255>`_.

    ResNet-26 bottlenecks (1, 2, 4 and 1 blocks in four stages of 64, 128, 256 and 512 middle channels, 4 times as
    many at the output) whose 3x3 convolution is an :class:`~holocron.nn.Involution2d` of ``kernel_size`` 7 carrying
    the block's stride, with one group per 16 channels and a kernel-generation reduction of 4, as in the paper. The
    stem follows the paper's: ``Conv2d 3x3`` stride 2 to 32 channels with BN and ReLU, ``Involution2d 3x3`` with BN and
    ReLU, ``Conv2d 3x3`` to 64 channels with BN and ReLU, then 3x3 max pooling of stride 2. The shortcut of a
    downsampling block is a strided ``Conv2d 1x1`` with BN. Average pooling and a ``Linear`` classifier end it.
    Difference from the paper: the kernel-generation branch of :class:`~holocron.nn.Involution2d` has no BatchNorm and
    ReLU between its two 1x1 convolutions.

    Args:
        num_classes: number of output classes.
        base_width: stem output channels and middle channels of the first stage (64 in the paper); the stages have
            ``base_width * 2 ** i`` middle channels.
        kernel_size: side of the involution kernels of the bottlenecks (odd).
        group_channels: channels per involution group (16 in the paper); a layer narrower than that has one group.
        reduction_ratio: channel reduction of the involution kernel generation (4 in the paper).
        seed: seed of the parameter initialisation (None: the caller's RNG state).

    Returns:
        The network, in eval mode, with default BatchNorm statistics (see :func:`calibrate_batchnorm`).
    """
    _check_resnet26_args(num_classes, base_width)
    check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 != 1:
        raise HolocronArgumentError(f"argument `kernel_size` is expected to be odd, received {kernel_size}")
    check_positive_int(group_channels, "group_channels")
    check_positive_int(reduction_ratio, "reduction_ratio")
    if base_width < 2 or base_width % 2 != 0:
        raise HolocronArgumentError(
            f"argument `base_width` is expected to be an even number >= 2, received {base_width}"
        )

    def involution(channels: int, kernel: int, stride: int) -> Involution2d:
        groups = math.gcd(channels, max(1, channels // group_channels))
        return Involution2d(
            channels,
            kernel,
            padding=kernel // 2,
            stride=stride,
            groups=groups,
            reduction_ratio=min(reduction_ratio, channels),
        )

    with _seeded(seed):
        half = base_width // 2
        stem = nn.Sequential(
            *_conv_bn(3, half, 3, stride=2),
            involution(half, 3, 1),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            *_conv_bn(half, base_width, 3),
            nn.MaxPool2d(3, 2, 1),
        )
        model = _BottleneckResNet(
            stem,
            base_width,
            _RESNET26_LAYOUT,
            num_classes,
            lambda channels, stride, _resolution: involution(channels, kernel_size, stride),
            None,
        )
    return model.eval()


def lambda_resnet26(
    num_classes: int = 1000,
    base_width: int = 64,
    dim_k: int = 16,
    num_heads: int = 4,
    r: int | None = 23,
    input_size: int | None = None,
    seed: int | None = 0,
) -> nn.Module:
    """LambdaResNet-26 for ``(N, 3, H, W)`` images (224 x 224 by default), from `LambdaNetworks: Modeling Long-Range
    Interactions Without Attention <https://arxiv.org/abs/2102.08602>`_.

    ResNet-26 bottlenecks (1, 2, 4 and 1 blocks in four stages of 64, 128, 256 and 512 middle channels, 4 times as
    many at the output) whose 3x3 convolution is a :class:`~holocron.nn.LambdaLayer` (``dim_k`` 16, 4 heads,
    ``dim_u`` 1, local contexts of side ``r`` = 23 in the paper); in a block of stride 2 the lambda layer runs at the
    input resolution and a 3x3 average pooling of stride 2 follows it. The stem is the deep ResNet-D stem: three
    ``Conv2d 3x3`` (stride 2, then 1, 1) of ``base_width / 2``, ``base_width / 2`` and ``base_width`` channels, each
    with BN and ReLU, then 3x3 max pooling of stride 2. The shortcut of a downsampling block is a strided
    ``Conv2d 1x1`` with BN. Average pooling and a ``Linear`` classifier end it. Lambda layers are used in all four
    stages (the paper's faster hybrids keep convolutions in the early stages).

    Args:
        num_classes: number of output classes.
        base_width: stem output channels and middle channels of the first stage (64 in the paper); the stages have
            ``base_width * 2 ** i`` middle channels, each a multiple of ``num_heads``.
        dim_k: query and key depth of the lambda layers.
        num_heads: number of query heads of the lambda layers.
        r: side of the local contexts (odd), or None for global contexts, whose position embeddings need
            ``input_size`` (their size grows as the fourth power of the resolution: small inputs only).
        input_size: side of the square input images; required when ``r`` is None, ignored otherwise.
        seed: seed of the parameter initialisation (None: the caller's RNG state).

    Returns:
        The network, in eval mode, with default BatchNorm statistics (see :func:`calibrate_batchnorm`).
    """
    _check_resnet26_args(num_classes, base_width)
    check_positive_int(dim_k, "dim_k")
    check_positive_int(num_heads, "num_heads")
    if base_width < 2 or base_width % 2 != 0 or base_width % num_heads != 0:
        raise HolocronArgumentError(
            f"argument `base_width` is expected to be an even multiple of `num_heads` ({num_heads}), received"
            f" {base_width}"
        )
    if r is None:
        if input_size is None:
            raise HolocronArgumentError("argument `input_size` is required for global contexts (`r` is None)")
        check_positive_int(input_size, "input_size")
    else:
        check_positive_int(r, "r")
        if r % 2 != 1:
            raise HolocronArgumentError(f"argument `r` is expected to be odd, received {r}")
        input_size = None

    def lambda_layer(channels: int, stride: int, resolution: int | None) -> nn.Module:
        n = None if resolution is None else resolution * resolution
        layer = LambdaLayer(channels, channels, dim_k, n=n, r=r, num_heads=num_heads)
        if stride == 1:
            return layer
        return nn.Sequential(layer, nn.AvgPool2d(3, stride, 1))

    with _seeded(seed):
        half = base_width // 2
        stem = nn.Sequential(
            *_conv_bn(3, half, 3, stride=2),
            *_conv_bn(half, half, 3),
            *_conv_bn(half, base_width, 3),
            nn.MaxPool2d(3, 2, 1),
        )
        model = _BottleneckResNet(stem, base_width, _RESNET26_LAYOUT, num_classes, lambda_layer, input_size)
    return model.eval()


# --------------------------------------------------------------------------------------------------------------------
# BatchNorm calibration
# --------------------------------------------------------------------------------------------------------------------


class _Moments:
    """Per-channel count, mean and sum of squared deviations in float64, merged batch by batch (Chan et al.)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None

    def update(self, x: Tensor) -> None:
        values = x.detach().to(torch.float64).transpose(0, 1).reshape(x.shape[1], -1)
        count = values.shape[1]
        mean = values.mean(dim=1)
        m2 = ((values - mean[:, None]) ** 2).sum(dim=1)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total


def calibrate_batchnorm(
    model: nn.Module,
    input_shape: Sequence[int],
    batches: int = 4,
    seed: int = 0,
    randomize_affine: bool = True,
) -> nn.Module:
    """Give every BatchNorm of ``model`` running statistics as a trained network has them, then put it in eval mode.

    The model runs once in train mode (under ``torch.no_grad``) on ``batches`` seeded ``N(0, 1)`` batches of shape
    ``input_shape`` stacked into one, so that each BatchNorm normalizes with the statistics of all of them; afterwards
    it holds as running mean and variance the exact mean and unbiased variance of its inputs over the calibration
    batches (computed in float64). The eval-mode network then reproduces the train-mode forward on the calibration
    inputs, as a trained network does on its training data. With ``randomize_affine``, the affine parameters are first
    drawn as a trained network has them: weights from ``U(0.5, 1.5)``, except in the BatchNorms that close a residual
    branch of the reference networks, from ``U(0.1, 0.4)``, and biases from ``U(-0.25, 0.25)``. The small residual
    scales matter: without them, the multiplicative layers (involution, lambda) square any deviation of a new input
    from the calibration statistics at every block, and the eval-mode outputs of the deeper networks blow up. The
    caller's RNG state is left untouched.

    Args:
        model: the network, modified in place.
        input_shape: shape of one calibration batch, batch dimension included.
        batches: number of calibration batches (>= 1).
        seed: seed of the calibration inputs and of the affine parameters.
        randomize_affine: whether to draw new affine parameters for the BatchNorms first (with False, the affine
            parameters are kept).

    Returns:
        ``model``, in eval mode.

    Raises:
        HolocronArgumentError: ``batches`` below 1, a negative ``seed`` or a non-positive dimension in ``input_shape``.
        ValueError: a BatchNorm sees a single value per channel (raised by PyTorch in train mode).
    """
    check_positive_int(batches, "batches")
    check_non_negative_int(seed, "seed")
    shape = tuple(input_shape)
    for dim in shape:
        check_positive_int(dim, "input_shape")
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    reference = next(iter(model.parameters()), None)
    dtype = reference.dtype if reference is not None else torch.get_default_dtype()
    device = reference.device if reference is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)

    with torch.no_grad():
        if randomize_affine:
            for norm in norms:
                if norm.affine:
                    low, high = (0.1, 0.4) if isinstance(norm, _BranchEndNorm) else (0.5, 1.5)
                    weight = low + (high - low) * torch.rand(
                        norm.num_features, generator=generator, dtype=torch.float64
                    )
                    bias = (torch.rand(norm.num_features, generator=generator, dtype=torch.float64) - 0.5) * 0.5
                    norm.weight.copy_(weight)
                    norm.bias.copy_(bias)

        moments = {norm: _Moments() for norm in norms}
        handles = [
            norm.register_forward_pre_hook(lambda module, args: moments[module].update(args[0])) for norm in norms
        ]
        try:
            model.train()
            inputs = [torch.randn(shape, generator=generator, dtype=dtype) for _ in range(batches)]
            model(torch.cat(inputs).to(device))
        finally:
            for handle in handles:
                handle.remove()
            model.eval()

        for norm, moment in moments.items():
            if moment.mean is None or moment.m2 is None or norm.running_mean is None or norm.running_var is None:
                continue
            norm.running_mean.copy_(moment.mean)
            norm.running_var.copy_(moment.m2 / (moment.count - 1))
            if norm.num_batches_tracked is not None:
                norm.num_batches_tracked.fill_(batches)
    return model


# --------------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------------


class NetworkSpec(NamedTuple):
    """How to build and feed one reference network.

    Args:
        builder: the network's builder.
        test_input_shape: small input (batch 4) for the narrow variant, used by the tests.
        narrow_kwargs: keyword arguments of ``builder`` for a narrow, fast variant.
        full_input_shape: input (batch 1) of the paper's resolution, for the full-width network (no kwargs).
    """

    builder: Callable[..., nn.Module]
    test_input_shape: tuple[int, int, int, int]
    narrow_kwargs: dict[str, Any]
    full_input_shape: tuple[int, int, int, int]


#: The reference networks by name.
NETWORKS: dict[str, NetworkSpec] = {
    "addernet_resnet20": NetworkSpec(addernet_resnet20, (4, 3, 32, 32), {"width": 8}, (1, 3, 32, 32)),
    "rednet26": NetworkSpec(rednet26, (4, 3, 64, 64), {"base_width": 16, "num_classes": 10}, (1, 3, 224, 224)),
    "lambda_resnet26": NetworkSpec(
        lambda_resnet26, (4, 3, 64, 64), {"base_width": 16, "r": 7, "num_classes": 10}, (1, 3, 224, 224)
    ),
}
