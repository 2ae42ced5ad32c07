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

# pytest's importlib mode puts no test folder on sys.path: this one holds the float64 reference.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from test_add2d_kernel import add2d_reference

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
ADD2D_PANEL_BUDGET = 128 * 2**10 + 5 * 2**10  # panel, slice statistics and column sums, per task (kernels/cpu/add2d.cc)
FLOAT32_ROUNDOFF = 2.0**-24


def add2d_feeds(rng: np.random.Generator, x_shape: tuple, w_shape: tuple, normalize: bool) -> dict[str, np.ndarray]:
    """Integers in [-4, 4] without normalize_slices: every partial sum stays below 2^24 (at most 8 * 2^20 here) and is
    exact in float32 in any order, so the kernel must equal the float64 reference bit for bit (a lost or repeated row
    block is off by at least 1); normal values with it, the slice being normalized to non-integers anyway."""
    if normalize:
        return {
            "X": rng.standard_normal(x_shape).astype(np.float32),
            "W": rng.standard_normal(w_shape).astype(np.float32),
            "B": rng.standard_normal(w_shape[0]).astype(np.float32),
        }
    return {
        "X": rng.integers(-4, 5, x_shape).astype(np.float32),
        "W": rng.integers(-4, 5, w_shape).astype(np.float32),
        "B": rng.integers(-4, 5, w_shape[0]).astype(np.float32),
    }


def assert_add2d_matches(y: np.ndarray, feeds: dict[str, np.ndarray], window: tuple, normalize: bool) -> None:
    """Exact on integer inputs; with normalize_slices within float32 rounding of the summed magnitudes.

    The kernel sums ``|S - W|`` as ``sum S + sum W - 2 sum min(S, W)`` over the D slice elements (docs/ops.md), so
    its error is bounded by about ``2 D u sum_l (|S_l| + |W_l|)`` (Higham's gamma_D to first order, for the three
    sums), plus ``|B|``; a normalized slice has ``sum |S| <= D`` (zero mean, unit variance).
    """
    x, w, b = feeds["X"], feeds["W"], feeds.get("B")
    expected = add2d_reference(x, w, b, *window, normalize_slices=normalize)
    if not normalize:
        np.testing.assert_array_equal(y, expected.astype(np.float32))
        return
    depth = int(np.prod(w.shape[1:]))
    magnitude = depth + np.abs(w.astype(np.float64)).reshape(w.shape[0], -1).sum(axis=1)
    if b is not None:
        magnitude = magnitude + np.abs(b.astype(np.float64))
    bound = 2 * (depth + 1) * FLOAT32_ROUNDOFF * magnitude[None, :, None, None]
    error = np.abs(y.astype(np.float64) - expected)
    assert np.all(error <= bound), f"off by up to {np.max(error - bound):.3g} past the rounding bound"


@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
def test_add2d_scratch_is_bounded_for_a_large_filter(library: Path, tmp_path: Path, normalize: bool) -> None:
    """A 4 MiB filter (C_in x kH x kW = 2^20), two images on two threads: scratch within the per-thread budget."""
    rng = np.random.default_rng(2)
    feeds = add2d_feeds(rng, (2, 4096, 16, 16), (1, 4096, 16, 16), normalize)
    del feeds["B"]
    attributes = {"normalize_slices": int(normalize)}
    growth, y = _run(single_node_model("Add2d", feeds, attributes), feeds, library, tmp_path)
    # Two tasks at a time, plus what the first run itself touches (0.4 MiB measured).
    assert growth < 2 * ADD2D_PANEL_BUDGET + 2 * 2**20, f"peak memory grew by {growth / 2**20:.1f} MiB"
    assert_add2d_matches(y, feeds, ([1, 1], [0, 0, 0, 0], [1, 1], 1), normalize)


ADD2D_BLOCK_CASES = {
    # 48 x 16 x 16 = 12288 slice elements: 3 to 12 row blocks whatever the vector width, 25 pixels (partial vectors),
    # 5 output channels (a remainder micro-tile), a bias, padding and strides.
    "pads-strides-bias": ((1, 48, 20, 20), (5, 48, 16, 16), [2, 1], [1, 0, 3, 0], [1, 1]),
    "dilations": ((2, 40, 24, 22), (3, 40, 10, 8), [1, 1], [0, 0, 0, 0], [2, 2]),
}


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
@pytest.mark.parametrize("name", list(ADD2D_BLOCK_CASES))
def test_add2d_row_blocks_sum_the_whole_slice(run_in_subprocess, name: str, normalize: bool, isa: str) -> None:
    """Slices cut into row blocks sum every element once, on every vector width (exact on integers)."""
    x_shape, w_shape, strides, pads, dilations = ADD2D_BLOCK_CASES[name]
    feeds = add2d_feeds(np.random.default_rng(3), x_shape, w_shape, normalize)
    attributes = {"strides": strides, "pads": pads, "dilations": dilations, "normalize_slices": int(normalize)}
    result = run_in_subprocess(single_node_model("Add2d", feeds, attributes), feeds, env={"HOLOCRON_CPU_ISA": isa})
    assert result.returncode == 0, result.stdout + result.stderr
    y = np.load(result.args[-1])["Y"]
    assert_add2d_matches(y, feeds, (strides, pads, dilations, 1), normalize)
