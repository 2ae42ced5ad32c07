"""The built-in demo model of ``holocron-export --demo`` and ``make demo``: many holocron layers in one network.

A small image classifier over ``(N, 16, 32, 32)`` inputs that goes through the three custom ops (Add2d,
Involution2d and both LambdaLayer variants, local and global) and most other holocron layers, so one export and one
verification exercise the whole pipeline. Its parameters and BatchNorm statistics come from a fixed seed, so every
build gives the same model; it is in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DEMO_INPUT_SHAPE", "DEMO_SEED", "build_demo_model"]

#: Default input shape of the demo model: ``(batch, channels, height, width)``.
DEMO_INPUT_SHAPE: tuple[int, int, int, int] = (1, 16, 32, 32)
#: Seed of the demo model's parameters and statistics.
DEMO_SEED = 0
_NUM_CLASSES = 10


def _randomize_batchnorm_statistics(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters, so that eval-mode normalization
    is not an identity the export could get wrong unnoticed."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(0.1 * torch.randn(channels, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(channels, generator=generator))
                module.weight.copy_(1.0 + 0.1 * torch.randn(channels, generator=generator))
                module.bias.copy_(0.1 * torch.randn(channels, generator=generator))


def build_demo_model() -> nn.Sequential:
    """Build the demo model (deterministic, eval mode).

    Layout, for a ``(N, 16, 32, 32)`` input (channels x height x width after each stage):

    =====================================================================  ============
    stage                                                                  output
    =====================================================================  ============
    NormConv2d 3x3 + FReLU                                                 16 x 32 x 32
    Add2d 3x3 + BatchNorm + HardMish                                       16 x 32 x 32
    Involution2d 3x3 (4 groups, reduction 2) + NLReLU                      16 x 32 x 32
    SlimConv2d 3x3                                                         12 x 32 x 32
    PyConv2d 3x3 (2 levels) + BatchNorm + ReLU                             16 x 32 x 32
    BlurPool2d                                                             16 x 16 x 16
    LambdaLayer (local context r=3, 4 heads) + SAM + TripletAttention      16 x 16 x 16
    DropBlock2d (identity in eval) + ConcatDownsample2d(2)                 64 x 8 x 8
    Conv 1x1 + LambdaLayer (global, n=64, 2 heads) + SPP(3, 5) + Conv 1x1  32 x 8 x 8
    GlobalAvgPool2d (flatten) + Linear                                     10
    =====================================================================  ============
    """
    import holocron.nn as hnn  # heavy (registers the custom torch ops): imported when a demo is built

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        model = nn.Sequential(
            hnn.NormConv2d(16, 16, 3, padding=1),
            hnn.FReLU(16),
            hnn.Add2d(16, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            hnn.HardMish(),
            hnn.Involution2d(16, 3, padding=1, groups=4, reduction_ratio=2),
            hnn.NLReLU(),
            hnn.SlimConv2d(16, 3, padding=1, r=4),
            hnn.PyConv2d(12, 16, 3, num_levels=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            hnn.BlurPool2d(16),
            hnn.LambdaLayer(16, 16, dim_k=4, r=3, num_heads=4),
            hnn.SAM(16),
            hnn.TripletAttention(),
            hnn.DropBlock2d(p=0.1, block_size=3),
            hnn.ConcatDownsample2d(2),
            nn.Conv2d(64, 16, 1),
            hnn.LambdaLayer(16, 16, dim_k=4, n=64, num_heads=2),
            hnn.SPP([3, 5]),
            nn.Conv2d(48, 32, 1),
            hnn.GlobalAvgPool2d(flatten=True),
            nn.Linear(32, _NUM_CLASSES),
        )
        _randomize_batchnorm_statistics(model, torch.Generator().manual_seed(DEMO_SEED))
    return model.eval()
