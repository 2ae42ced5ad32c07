"""Add2d's CPU kernel on every vector width: exact on integer-valued inputs, and the min identity's exact fallback.

The kernel sums ``|S - W|`` as ``sum S + sum W - 2 sum min(S, W)`` over slices packed per pixel tile (a contiguous copy
at stride 1, a deinterleave at stride 2, a gather otherwise), with a wide micro-tile (two vectors of pixels) or, when
the wide tiles are too few for the threads, a narrow one (one vector, twice the channels), and long slices in row
blocks; or, at stride 1 along the rows where output rows fill the vectors and a band of input rows fits in L1, reads the
slices in place from a padded copy of each task's band of input rows (the band path). On small integers every partial
sum is exact in float32 whatever the order, so each configuration must give the float64 reference bit for bit: a wrong
gather, block boundary, column or filter sum, or remainder tile is off by at least 1. Non-finite inputs (and sums that
overflow) must give what the exact formula gives.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model

# pytest's importlib mode puts no test folder on sys.path: this one holds the float64 reference.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from test_add2d_kernel import add2d_reference

# name: (X shape, W shape, strides, pads, dilations, group); micro-tiles are 32 and 16 pixels wide with AVX-512, 16
# and 8 with AVX2, 8 for the baseline. The band path needs an output row within 9/8 of whole micro-tiles: widths 28
# and 5 never take it, 56 takes it with 8-pixel tiles (AVX2's narrow one, the baseline), 30 with 16 or 8, 16 and 32
# with any.
CASES = {
    # Many pixel tiles (wide micro-tiles); 13 output channels leave a remainder tile for every channel block.
    "s1": ((2, 6, 9, 28), (13, 6, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
    # Groups, dilations, uneven pads and a vertical stride.
    "s1-groups-dilations": ((1, 8, 12, 30), (6, 4, 3, 3), [2, 1], [2, 1, 0, 3], [2, 2], 2),
    # A 1x5 filter on a 56-wide row: tiles across output rows.
    "s1-wide-row": ((1, 3, 4, 56), (5, 3, 1, 5), [1, 1], [0, 2, 0, 2], [1, 1], 1),
    # 80 input channels, 720-element slices.
    "s1-long-slices": ((1, 80, 5, 28), (7, 80, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
    # Stride 2 (the deinterleave), 196 pixels: few wide tiles, so the narrow micro-tile with AVX-512 and AVX2.
    "s2": ((1, 64, 28, 28), (16, 64, 3, 3), [2, 2], [1, 1, 1, 1], [1, 1], 1),
    # Stride 2 with dilation 3 and odd widths.
    "s2-dilated": ((2, 4, 11, 31), (5, 4, 2, 3), [1, 2], [0, 1, 1, 2], [1, 3], 1),
    # Stride 3: the gather.
    "s3": ((1, 5, 17, 17), (4, 5, 3, 3), [3, 3], [1, 1, 1, 1], [1, 1], 1),
    # W_out 5: micro-tiles across several output rows.
    "narrow-rows": ((3, 4, 7, 7), (6, 4, 3, 3), [1, 1], [0, 0, 0, 0], [1, 1], 1),
    # A 4680-element slice: row blocks on every width (1024, 2048 or 4096 rows per block).
    "row-blocks": ((1, 520, 6, 6), (3, 520, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
    # The band path on every width: 9 output rows in two bands (5 + 4), 13 output channels (remainder tiles).
    "band": ((2, 6, 9, 32), (13, 6, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
    # The band path with groups, dilations, uneven pads and a vertical stride.
    "band-groups-dilations": ((1, 8, 12, 32), (6, 4, 3, 3), [2, 1], [2, 1, 0, 3], [2, 2], 2),
    # A left pad of 4 and none on the right, 16-wide rows (AVX-512's narrow micro-tile).
    "band-wide-pad": ((1, 3, 5, 16), (4, 3, 2, 5), [1, 1], [0, 4, 1, 0], [1, 1], 1),
    # 48 input channels: only a band of one output row fits the budget beside the filters (of the wide micro-tile,
    # which two images give enough pixel tiles for on 2 cores).
    "band-one-row": ((2, 48, 4, 32), (5, 48, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
}
ISAS = ["baseline", "avx2", "avx512"]

# Runs every model of a folder in one process (one per instruction-set cap), writing each output beside it.
RUNNER = """
import sys
from pathlib import Path
import numpy as np
from holocron.runtime import InferenceSession, session_options
for model in sorted(Path(sys.argv[1]).glob("*.onnx")):
    feeds = dict(np.load(model.with_suffix(".feeds.npz")))
    session = InferenceSession(str(model), sess_options=session_options(intra_op_num_threads=2))
    np.save(model.with_suffix(".out.npy"), session.run(None, feeds)[0])
"""


def run_all(library: Path, folder: Path, models: dict[str, tuple[onnx.ModelProto, dict]], isa: str) -> dict:
    for name, (model, feeds) in models.items():
        onnx.save(model, folder / f"{name}.onnx")
        np.savez(folder / f"{name}.feeds.npz", **feeds)
    env = {**os.environ, "HOLOCRON_RUNTIME_LIBRARY": str(library), "HOLOCRON_CPU_ISA": isa}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(folder)], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {name: np.load(folder / f"{name}.out.npy") for name in models}


def integer_feeds(name: str, seed: int) -> tuple[dict[str, np.ndarray], tuple]:
    x_shape, w_shape, strides, pads, dilations, group = CASES[name]
    rng = np.random.default_rng(seed)
    feeds = {
        "X": rng.integers(-8, 9, x_shape).astype(np.float32),
        "W": rng.integers(-8, 9, w_shape).astype(np.float32),
        "B": rng.integers(-8, 9, w_shape[0]).astype(np.float32),
    }
    return feeds, (strides, pads, dilations, group)


def model_of(feeds: dict[str, np.ndarray], window: tuple) -> onnx.ModelProto:
    strides, pads, dilations, group = window
    attributes = {"strides": strides, "pads": pads, "dilations": dilations, "group": group}
    return single_node_model("Add2d", feeds, attributes)


@pytest.mark.parametrize("isa", ISAS)
def test_every_configuration_is_exact_on_integers(library: Path, tmp_path: Path, isa: str) -> None:
    models, expected = {}, {}
    for seed, name in enumerate(CASES):
        feeds, window = integer_feeds(name, seed)
        models[name] = (model_of(feeds, window), feeds)
        expected[name] = add2d_reference(feeds["X"], feeds["W"], feeds["B"], *window)
    outputs = run_all(library, tmp_path, models, isa)
    for name in CASES:
        np.testing.assert_array_equal(outputs[name], expected[name].astype(np.float32), err_msg=name)


@pytest.mark.parametrize("isa", ISAS)
def test_non_finite_inputs_give_the_exact_formula(library: Path, tmp_path: Path, isa: str) -> None:
    """inf, -inf and NaN inputs, and a filter equal to a huge input (sum S + sum W overflows where |S - W| is 0)."""
    models, expected = {}, {}
    for name in ["s1", "s2", "narrow-rows", "row-blocks", "band", "band-wide-pad"]:
        feeds, window = integer_feeds(name, 7)
        x, w = feeds["X"], feeds["W"]
        x[0, 0, 1, 1] = np.inf
        x[-1, -1, 2, 3] = -np.inf
        x[0, -1, -2, -1] = np.nan
        # One huge value under the windows of output pixel (0, 0), met by an equal weight of output channel 0.
        x[0, 1, 0, 0] = 3e38
        w[0, 1, 1, 1] = 3e38
        w[-1, 0, 0, 0] = -np.inf
        models[name] = (model_of(feeds, window), feeds)
        with np.errstate(invalid="ignore", over="ignore"):
            expected[name] = add2d_reference(x, w, feeds["B"], *window).astype(np.float32)
    outputs = run_all(library, tmp_path, models, isa)
    for name, want in expected.items():
        got = outputs[name]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(want) * np.sign(want), err_msg=name)
        finite = np.isfinite(want)
        # Finite outputs: integers plus at most one 3e38 term, exact up to the rounding of that term.
        np.testing.assert_allclose(got[finite], want[finite], rtol=2e-7, atol=0, err_msg=name)
