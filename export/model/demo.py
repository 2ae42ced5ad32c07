"""The built-in demo model of ``holocron-export --demo`` and ``make demo``: a real network, AdderNet ResNet-20.

The demo is the full-width AdderNet ResNet-20 for CIFAR images (:func:`holocron._networks.addernet_resnet20`, from
`AdderNet: Do We Really Need Multiplications in Deep Learning? <https://arxiv.org/abs/1912.13200>`_): 20
:class:`~holocron.nn.Add2d` layers between a convolution stem and a linear classifier, so one export and one
verification exercise a whole published architecture, and ``make demo`` times it (``benchmarks/demo_speed.py``).
Its parameters come from a fixed seed and its BatchNorm statistics from
:func:`~holocron._networks.calibrate_batchnorm` on seeded inputs, so every build gives the same model, with the
statistics a trained network has; it is in eval mode.
"""

from __future__ import annotations

from torch import nn

__all__ = ["DEMO_INPUT_SHAPE", "DEMO_SEED", "build_demo_model"]

#: Default input shape of the demo model: ``(batch, channels, height, width)``, one CIFAR image.
DEMO_INPUT_SHAPE: tuple[int, int, int, int] = (1, 3, 32, 32)
#: Seed of the demo model's parameters and BatchNorm calibration.
DEMO_SEED = 0
#: Images per BatchNorm calibration batch (the statistics need more than one value per channel).
_CALIBRATION_BATCH = 8


def build_demo_model() -> nn.Module:
    """Build the demo model: AdderNet ResNet-20 (width 16, 10 classes) with calibrated BatchNorms, in eval mode.

    Layout, for a ``(N, 3, 32, 32)`` input (channels x height x width after each stage):

    ==================================================================  ============
    stage                                                               output
    ==================================================================  ============
    Conv2d 3x3 + BatchNorm + ReLU                                       16 x 32 x 32
    3 adder basic blocks (Add2d 3x3 - BN - ReLU - Add2d 3x3 - BN, +x)   16 x 32 x 32
    3 adder basic blocks, the first of stride 2 (Add2d 1x1 shortcut)    32 x 16 x 16
    3 adder basic blocks, the first of stride 2 (Add2d 1x1 shortcut)    64 x 8 x 8
    global average pooling + Linear                                     10
    ==================================================================  ============
    """
    from holocron._networks import addernet_resnet20, calibrate_batchnorm  # heavy: imported when a demo is built

    model = addernet_resnet20(seed=DEMO_SEED)
    calibration_shape = (_CALIBRATION_BATCH, *DEMO_INPUT_SHAPE[1:])
    return calibrate_batchnorm(model, calibration_shape, batches=1, seed=DEMO_SEED)
