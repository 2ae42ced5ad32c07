"""CPU kernel scratch memory does not grow with strides, dilations or pads (issue 8, finding 4).

Involution2d on a 1x1x1x1 input with ``strides=[1, 2**24]`` used to allocate 1 GiB of scratch (one phase per stride
step), 2 GiB with ``kernel_shape=[2, 1], pads=[1, 0, 0, 0]``; a large dilation did the same through the rows. Each
model here runs in a fresh interpreter that reports the growth of its peak resident set over the run; the output
must still equal a float64 reference.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model

_RUN = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import onnxruntime as ort
    model, feeds_path, out_path, library = sys.argv[1:5]
    feeds = dict(np.load(feeds_path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.register_custom_ops_library(library)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (y,) = session.run(None, feeds)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(out_path, y)
    print((after - before) * 1024)
    """
)

BIG = 2**24


def involution_reference(x: np.ndarray, k: np.ndarray, kernel: list[int], strides, pads, dilations) -> np.ndarray:
    """Float64 Involution2d, one group, by its definition."""
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = k.shape[2:]
    y = np.zeros((n, c, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            for i in range(kh):
                for j in range(kw):
                    iy = oy * strides[0] + i * dilations[0] - pads[0]
                    ix = ox * strides[1] + j * dilations[1] - pads[1]
                    if 0 <= iy < h and 0 <= ix < w:
                        y[:, :, oy, ox] += k[:, i * kw + j, oy, ox, None] * x[:, :, iy, ix]
    return y


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], library: Path, tmp_path: Path) -> tuple[int, np.ndarray]:
    onnx.save(model, tmp_path / "model.onnx")
    np.savez(tmp_path / "feeds.npz", **feeds)
    out = tmp_path / "y.npy"
    args = [str(tmp_path / "model.onnx"), str(tmp_path / "feeds.npz"), str(out), str(library)]
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1]), np.load(out)


INVOLUTION_CASES = [
    pytest.param([1, 1], [1, BIG], [0, 0, 0, 0], [1, 1], id="stride-w-2^24"),
    pytest.param([2, 1], [1, BIG], [1, 0, 0, 0], [1, 1], id="stride-w-2^24-kernel-2x1-pad-top"),
    pytest.param([1, 1], [BIG, 1], [0, 0, 0, 0], [1, 1], id="stride-h-2^24"),
    pytest.param([2, 1], [1, 1], [BIG, 0, 0, 0], [BIG, 1], id="dilation-h-2^24"),
    pytest.param([1, 2], [1, 1], [0, BIG, 0, 0], [1, BIG], id="dilation-w-2^24"),
    pytest.param([2, 2], [BIG, BIG], [BIG, BIG, 0, 0], [BIG, BIG], id="all-2^24"),
]


@pytest.mark.parametrize(("kernel", "strides", "pads", "dilations"), INVOLUTION_CASES)
def test_involution_scratch_is_bounded(library: Path, tmp_path: Path, kernel, strides, pads, dilations) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)
    ho = (1 + pads[0] + pads[2] - dilations[0] * (kernel[0] - 1) - 1) // strides[0] + 1
    wo = (1 + pads[1] + pads[3] - dilations[1] * (kernel[1] - 1) - 1) // strides[1] + 1
    k = rng.standard_normal((1, kernel[0] * kernel[1], ho, wo)).astype(np.float32)
    attributes = {"kernel_shape": kernel, "strides": strides, "pads": pads, "dilations": dilations}
    growth, y = _run(
        single_node_model("Involution2d", {"X": x, "K": k}, attributes), {"X": x, "K": k}, library, tmp_path
    )
    assert growth < 64 * 2**20, f"peak memory grew by {growth / 2**20:.0f} MiB"
    expected = involution_reference(x.astype(np.float64), k.astype(np.float64), kernel, strides, pads, dilations)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("strides", "pads", "dilations"),
    [([1, BIG], [1, 1, 0, 0], [1, 1]), ([BIG, BIG], [BIG, BIG, 0, 0], [BIG, BIG])],
    ids=["stride-w-2^24", "all-2^24"],
)
def test_add2d_scratch_is_bounded(library: Path, tmp_path: Path, strides, pads, dilations) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)
    w = rng.standard_normal((3, 1, 2, 2)).astype(np.float32)
    attributes = {"strides": strides, "pads": pads, "dilations": dilations}
    growth, y = _run(single_node_model("Add2d", {"X": x, "W": w}, attributes), {"X": x, "W": w}, library, tmp_path)
    assert growth < 64 * 2**20, f"peak memory grew by {growth / 2**20:.0f} MiB"
    # Every tap but (at most) one reads padding: the reference by definition, in float64.
    ho = (1 + pads[0] + pads[2] - dilations[0] - 1) // strides[0] + 1
    wo = (1 + pads[1] + pads[3] - dilations[1] - 1) // strides[1] + 1
    expected = np.zeros((1, 3, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            for i in range(2):
                for j in range(2):
                    iy = oy * strides[0] + i * dilations[0] - pads[0]
                    ix = ox * strides[1] + j * dilations[1] - pads[1]
                    s = float(x[0, 0, iy, ix]) if (iy, ix) == (0, 0) else 0.0
                    expected[0, :, oy, ox] -= np.abs(s - w[:, 0, i, j].astype(np.float64))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
