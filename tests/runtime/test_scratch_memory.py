"""CPU kernel scratch memory does not grow with strides, dilations or pads (issue 8, finding 4).

Involution2d on a 1x1x1x1 input with ``strides=[1, 2**24]`` used to allocate 1 GiB of scratch (one phase per stride
step), 2 GiB with ``kernel_shape=[2, 1], pads=[1, 0, 0, 0]``; a large dilation did the same through the rows. Each
model here runs in a fresh interpreter that reports the growth of its peak resident set over the run (on Linux the
peak is reset first, so an earlier, higher peak cannot hide it); the output must still equal a reference.
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

    def peak():
        # This process's own peak in bytes: /proc's VmHWM where there is one (ru_maxrss also counts the parent's
        # resident set at fork, hundreds of MiB under pytest, which would hide a smaller growth).
        try:
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    model, feeds_path, out_path, library = sys.argv[1:5]
    feeds = dict(np.load(feeds_path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.register_custom_ops_library(library)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    try:  # start the peak here: reading the feeds and creating the session may have peaked higher
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass
    before = peak()
    (y,) = session.run(None, feeds)
    after = peak()
    np.save(out_path, y)
    print(after - before)
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


# Add2d's scratch is bounded by a fixed budget per thread whatever the filter size (issue 16, finding 4): a slice
# longer than the budget allows goes through the panel in row blocks. Before, the panel held whole slices of at least
# one micro-tile of pixels: 32 to 128 MiB per task for a 4 MiB filter.
ADD2D_PANEL_BUDGET = 128 * 2**10 + 4 * 2**10  # panel plus slice statistics, per task (kernels/cpu/add2d.cc)


def add2d_sequential_float32(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: list[int],
    pads: list[int],
    dilations: list[int],
    normalize: bool,
    eps: float,
) -> np.ndarray:
    """Add2d (one group) with the CPU kernel's own arithmetic, which must reproduce it bit for bit.

    Every output sums ``|S[l] - W[o, l]|`` in float32 over the slice elements ``l = (c, i, j)`` in C order, from 0,
    and writes ``B[o] - sum`` (float32 ``cumsum`` runs sequentially, as the kernel does); with ``normalize`` the slice
    is first replaced by ``(S - mean) / sqrt(var + eps)``, its statistics summed sequentially in float64.
    """
    n, c, h, wd = x.shape
    out_c, _, kh, kw = w.shape
    ho = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    wo = (wd + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    padded = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]), np.float32)
    padded[:, :, pads[0] : pads[0] + h, pads[1] : pads[1] + wd] = x
    slices = np.empty((n, c, kh, kw, ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dilations[0], i * dilations[0] + (ho - 1) * strides[0] + 1, strides[0])
            cols = slice(j * dilations[1], j * dilations[1] + (wo - 1) * strides[1] + 1, strides[1])
            slices[:, :, i, j] = padded[:, :, rows, cols]
    length = c * kh * kw
    slices = slices.reshape(n, length, ho * wo)
    if normalize:
        wide = slices.astype(np.float64)
        mean = np.cumsum(wide, axis=1)[:, -1:] * (1.0 / length)
        deviation = wide - mean
        denominator = np.cumsum(deviation * deviation, axis=1)[:, -1:] * (1.0 / length) + float(np.float32(eps))
        scale = np.where(denominator > 0.0, 1.0 / np.sqrt(np.where(denominator > 0.0, denominator, 1.0)), 0.0)
        slices = (deviation * scale).astype(np.float32)
    distances = np.abs(slices[:, None] - w.reshape(1, out_c, length, 1))
    sums = np.cumsum(distances, axis=2, dtype=np.float32)[:, :, -1]
    bias = np.zeros(out_c, np.float32) if b is None else b
    return (bias[None, :, None] - sums).reshape(n, out_c, ho, wo)


@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
def test_add2d_scratch_is_bounded_for_a_large_filter(library: Path, tmp_path: Path, normalize: bool) -> None:
    """A 4 MiB filter (C_in x kH x kW = 2^20), two images on two threads: scratch within the per-thread budget."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4096, 16, 16)).astype(np.float32)
    w = rng.standard_normal((1, 4096, 16, 16)).astype(np.float32)
    attributes = {"normalize_slices": int(normalize)}
    growth, y = _run(single_node_model("Add2d", {"X": x, "W": w}, attributes), {"X": x, "W": w}, library, tmp_path)
    # Two tasks at a time, plus what the first run itself touches (0.4 MiB measured).
    assert growth < 2 * ADD2D_PANEL_BUDGET + 2 * 2**20, f"peak memory grew by {growth / 2**20:.1f} MiB"
    expected = add2d_sequential_float32(x, w, None, [1, 1], [0, 0, 0, 0], [1, 1], normalize, 1e-14)
    np.testing.assert_array_equal(y, expected)


ADD2D_BLOCK_CASES = {
    # 48 x 16 x 16 = 12288 slice elements: 3 to 12 row blocks whatever the vector width, 25 pixels (partial vectors),
    # 5 output channels (a remainder micro-tile), a bias, padding and strides.
    "pads-strides-bias": ((1, 48, 20, 20), (5, 48, 16, 16), [2, 1], [1, 0, 3, 0], [1, 1]),
    "dilations": ((2, 40, 24, 22), (3, 40, 10, 8), [1, 1], [0, 0, 0, 0], [2, 2]),
}


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
@pytest.mark.parametrize("name", list(ADD2D_BLOCK_CASES))
def test_add2d_row_blocks_are_bit_identical(run_in_subprocess, name: str, normalize: bool, isa: str) -> None:
    """Slices cut into row blocks give exactly the sums of one pass over the slice, on every vector width."""
    x_shape, w_shape, strides, pads, dilations = ADD2D_BLOCK_CASES[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    feeds = {"X": x, "W": w, "B": b}
    attributes = {"strides": strides, "pads": pads, "dilations": dilations, "normalize_slices": int(normalize)}
    result = run_in_subprocess(single_node_model("Add2d", feeds, attributes), feeds, env={"HOLOCRON_CPU_ISA": isa})
    assert result.returncode == 0, result.stdout + result.stderr
    y = np.load(result.args[-1])["Y"]
    expected = add2d_sequential_float32(x, w, b, strides, pads, dilations, normalize, 1e-14)
    np.testing.assert_array_equal(y, expected)
