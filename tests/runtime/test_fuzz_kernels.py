"""Hostile attributes and shapes for each kernel: an onnxruntime error or the float64 reference, never a crash or hang.

Each op's test draws a small valid single-node model, then applies up to two hostile mutations (negative, zero and
huge values such as 2**24 and 2**40, wrong numbers of ints, wrong ranks, mismatched channels or groups, zero-size
dimensions, kernels larger than the padded input, positional shapes that disagree with the queries). Every model runs
in a worker interpreter (one per test, restarted after a crash) under a per-model timeout and a 4 GiB address-space
limit. The outcome must be an onnxruntime error reported by the worker, or an output equal to the float64 reference
within float32 rounding of the sum of the terms' magnitudes (as in ``test_lambda_kernel.py``); a model that the
mutations left untouched must succeed. A signal exit fails the example as a crash, a timeout as a hang, and growth of
the worker's peak resident set beyond a bound set by the tensors' sizes as an unbounded allocation.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# pytest's importlib mode puts no test folder on sys.path: this one holds the float64 references.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from test_add2d_kernel import add2d_reference
from test_involution2d_kernel import involution2d_reference
from test_lambda_kernel import FLOAT32_EPS, MAGNITUDE_ULPS, lambda_reference

ATOL, RTOL = 1e-5, 1e-4
HUGE = (2**24, 2**24 + 1, 2**31, 2**40, -(2**40), -(2**31))
SMALL_BAD = (-1, 0)
# Seconds one model may take (a few milliseconds when healthy) before the example fails as a hang.
TIMEOUT_S = 60
# Successful outputs (and padded inputs) larger than this are checked for shape, finiteness and memory only: the
# float64 reference of a 2**24-row output would dominate the test's time.
REFERENCE_ELEMENTS = 1 << 21
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_WORKER = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    from holocron.runtime import InferenceSession, session_options
    for line in sys.stdin:
        model, feeds_path, out_path = line.split()
        feeds = dict(np.load(feeds_path))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            options = session_options(intra_op_num_threads=2, log_severity_level=4)
            (y,) = InferenceSession(model, sess_options=options).run(None, feeds)
        except Exception as error:  # an onnxruntime refusal; a crash never gets here
            text = " ".join(f"{type(error).__name__}: {error}".split())
            print("ERROR", text, flush=True)
            continue
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        if y.size <= int(sys.argv[1]):
            np.save(out_path, y)
        print("OK", growth, y.size, y.nbytes, all(np.isfinite(y).flat) if y.size else True, *y.shape, flush=True)
    """
)


@dataclass
class Outcome:
    """What the worker reported for one model: an error message, or the output's shape (and values when small)."""

    error: str | None = None
    shape: tuple[int, ...] = ()
    finite: bool = True
    growth: int = 0
    y: np.ndarray | None = None


@dataclass
class Worker:
    """A persistent interpreter that runs one model per request; restarted after it dies."""

    library: Path
    folder: Path
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def _start(self) -> subprocess.Popen[str]:
        env = {**os.environ, "HOLOCRON_RUNTIME_LIBRARY": str(self.library)}
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(REFERENCE_ELEMENTS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def run(self, model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> Outcome:
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        model_path, feeds_path, out_path = (self.folder / name for name in ("model.onnx", "feeds.npz", "out.npy"))
        onnx.save(model, model_path)
        np.savez(feeds_path, **feeds)
        out_path.unlink(missing_ok=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{model_path} {feeds_path} {out_path}\n")
        self.process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(TIMEOUT_S)
        if not ready:
            self.close()
            pytest.fail(f"hang: no answer within {TIMEOUT_S} s")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=TIMEOUT_S)
            self.process = None
            pytest.fail(f"crash: the worker exited with {code} (negative: killed by that signal)")
        kind, _, rest = line.strip().partition(" ")
        if kind == "ERROR":
            return Outcome(error=rest)
        growth, size, _, finite, *shape = rest.split()
        y = np.load(out_path) if int(size) <= REFERENCE_ELEMENTS else None
        return Outcome(shape=tuple(map(int, shape)), finite=finite == "True", growth=int(growth), y=y)

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def worker(library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    running = Worker(library, tmp_path_factory.mktemp("fuzz"))
    yield running
    running.close()


def _random(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def check(
    worker: Worker,
    op: str,
    feeds: dict[str, np.ndarray],
    attributes: dict[str, object],
    mutated: list[str],
    reference: Callable[..., np.ndarray],
    magnitude: Callable[..., np.ndarray],
    padded_elements: int,
) -> None:
    """Run the model; demand an error, or the reference (within the float32 bound of ``magnitude``) and bounded memory.

    ``reference(*arrays)`` takes the feeds in order; ``magnitude`` the same with the absolute values substituted.
    """
    empty = [name for name, value in attributes.items() if value == []]
    model = single_node_model(op, feeds, {name: value for name, value in attributes.items() if name not in empty})
    for name in empty:  # an empty ints attribute needs its type spelled out
        model.graph.node[0].attribute.append(onnx.helper.make_attribute(name, [], attr_type=onnx.AttributeProto.INTS))
    outcome = worker.run(model, feeds)
    if outcome.error is not None:
        assert mutated, f"the unmutated valid model failed: {outcome.error}"
        return
    feed_bytes = sum(value.nbytes for value in feeds.values())
    out_bytes = int(np.prod(outcome.shape, dtype=np.int64)) * 4
    bound = 64 * 2**20 + 8 * (feed_bytes + out_bytes)
    assert outcome.growth <= bound, f"peak memory grew by {outcome.growth} bytes (bound {bound}) with {mutated}"
    if outcome.y is None or padded_elements > REFERENCE_ELEMENTS:
        assert outcome.finite, f"non-finite values in a large output with {mutated}"
        return
    expected = reference(*feeds.values())
    assert outcome.y.shape == expected.shape, f"{outcome.y.shape} != {expected.shape} with {mutated}"
    terms = magnitude(*(np.abs(value) for value in feeds.values()))
    limit = ATOL + RTOL * np.abs(expected) + MAGNITUDE_ULPS * FLOAT32_EPS * terms
    error = np.abs(outcome.y.astype(np.float64) - expected)
    assert np.all(error <= limit), f"off by up to {np.max(error - limit):.3g} past the bound with {mutated}"


def conv_size(size: int, kernel: int, stride: int, begin: int, end: int, dilation: int) -> int:
    return (size + begin + end - dilation * (kernel - 1) - 1) // stride + 1


def _hostile_ints(draw: st.DrawFn, count: int) -> list[int]:
    """A wrong number of ints, or the right number with at least one hostile value."""
    length = draw(st.sampled_from([count, count, count, 0, 1, count + 1, 2 * count + 1]))
    values = [draw(st.sampled_from((1, 2, 3, *SMALL_BAD, *HUGE))) for _ in range(length)]
    if length == count and values:
        values[draw(st.integers(0, count - 1))] = draw(st.sampled_from((*SMALL_BAD, *HUGE)))
    return values


def _window_attributes(draw: st.DrawFn, mutated: list[str], attributes: dict[str, object], names: list[str]) -> None:
    """Possibly replace window attributes (strides, pads, dilations, group) with hostile values."""
    for name in names:
        if draw(st.integers(0, 5)) == 0:
            count = {"strides": 2, "pads": 4, "dilations": 2, "kernel_shape": 2}.get(name)
            value: object = _hostile_ints(draw, count) if count else draw(st.sampled_from((*SMALL_BAD, *HUGE, 5)))
            attributes[name] = value
            mutated.append(f"{name}={value}")


def _valid_window(draw: st.DrawFn) -> dict[str, list[int]]:
    return {
        "strides": [draw(st.integers(1, 3)), draw(st.integers(1, 3))],
        "pads": [draw(st.integers(0, 2)) for _ in range(4)],
        "dilations": [draw(st.integers(1, 2)), draw(st.integers(1, 2))],
    }


def _big_padded(shape: tuple[int, ...], attributes: dict[str, object]) -> int:
    """Elements of the zero-padded input the reference would build (huge when a pad is)."""
    pads = attributes.get("pads", [0, 0, 0, 0])
    if not isinstance(pads, list) or len(pads) != 4 or min(pads) < 0 or len(shape) != 4:
        return 0
    return shape[0] * shape[1] * (shape[2] + pads[0] + pads[2]) * (shape[3] + pads[1] + pads[3])


@st.composite
def add2d_cases(draw: st.DrawFn) -> tuple[dict[str, tuple[int, ...]], dict[str, object], list[str]]:
    mutated: list[str] = []
    window = _valid_window(draw)
    kh, kw, group = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    c_in, c_out = group * draw(st.integers(1, 3)), group * draw(st.integers(1, 3))
    h = max(1, window["dilations"][0] * (kh - 1) + 1 - window["pads"][0] - window["pads"][2]) + draw(st.integers(0, 4))
    w = max(1, window["dilations"][1] * (kw - 1) + 1 - window["pads"][1] - window["pads"][3]) + draw(st.integers(0, 4))
    shapes = {"X": (draw(st.integers(1, 2)), c_in, h, w), "W": (c_out, c_in // group, kh, kw), "B": (c_out,)}
    attributes: dict[str, object] = {**window, "group": group}
    _window_attributes(draw, mutated, attributes, ["strides", "pads", "dilations", "group"])
    for name, values in {
        "normalize_slices": (2, -1, 2**40),
        "eps": (-1.0, float("nan"), float("inf"), 1e30),
    }.items():
        if draw(st.integers(0, 7)) == 0:
            attributes[name] = draw(st.sampled_from(values))
            mutated.append(f"{name}={attributes[name]}")
    mutation = draw(st.sampled_from(["none"] * 4 + ["x_rank", "w_rank", "channels", "zero", "kernel_big", "bias"]))
    if mutation == "x_rank":
        shapes["X"] = draw(st.sampled_from([shapes["X"][1:], (*shapes["X"], 1), (h,)]))
    elif mutation == "w_rank":
        shapes["W"] = draw(st.sampled_from([shapes["W"][1:], (*shapes["W"], 2)]))
    elif mutation == "channels":
        shapes["W"] = (c_out + draw(st.sampled_from([1, -1 if c_out > 1 else 2])), c_in // group + 1, kh, kw)
    elif mutation == "zero":
        axis = draw(st.integers(0, 3))
        key = draw(st.sampled_from(["X", "W"]))
        shapes[key] = tuple(0 if i == axis else d for i, d in enumerate(shapes[key]))
    elif mutation == "kernel_big":
        shapes["W"] = (c_out, c_in // group, h + 5, draw(st.sampled_from([kw, w + 9])))
    elif mutation == "bias":
        shapes["B"] = draw(st.sampled_from([(c_out + 1,), (0,), (c_out, 1)]))
    if mutation != "none":
        mutated.append(mutation)
    if draw(st.booleans()):
        del shapes["B"]
    return shapes, attributes, mutated


_BIG = 2**24
_WINDOW = {"pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1}


@SETTINGS
@given(case=add2d_cases(), seed=st.integers(0, 2**16))
# Valid extremes: a 2**24 stride; a 2**24 pad that the same stride skips over (the reference is then too large).
@example(case=({"X": (1, 2, 3, 3), "W": (2, 2, 1, 1)}, {**_WINDOW, "strides": [_BIG, 1]}, ["strides"]), seed=1)
@example(
    case=({"X": (1, 1, 2, 2), "W": (1, 1, 1, 1)}, {**_WINDOW, "strides": [_BIG, 1], "pads": [_BIG, 0, 0, 0]}, ["p"]),
    seed=2,
)
def test_add2d_fuzz(worker: Worker, case: tuple, seed: int) -> None:
    shapes, attributes, mutated = case
    feeds = _random(np.random.default_rng(seed), shapes)

    def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        window = {name: attributes[name] for name in ("strides", "pads", "dilations")}
        return add2d_reference(x, w, b, **window, group=int(attributes["group"]))  # type: ignore[arg-type]

    def magnitude(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        # Called with |inputs|: each term |s - w| rounds relative to |s| + |w| = | |s| - (-|w|) |.
        return -reference(x, -w) + (0 if b is None else b[None, :, None, None])

    check(worker, "Add2d", feeds, attributes, mutated, reference, magnitude, _big_padded(shapes["X"], attributes))


@st.composite
def involution_cases(draw: st.DrawFn) -> tuple[dict[str, tuple[int, ...]], dict[str, object], list[str]]:
    mutated: list[str] = []
    window = _valid_window(draw)
    kernel = [draw(st.integers(1, 4)), draw(st.integers(1, 4))]
    group = draw(st.integers(1, 3))
    c = group * draw(st.integers(1, 3))
    h = max(1, window["dilations"][0] * (kernel[0] - 1) + 1 - window["pads"][0] - window["pads"][2])
    w = max(1, window["dilations"][1] * (kernel[1] - 1) + 1 - window["pads"][1] - window["pads"][3])
    n, h, w = draw(st.integers(1, 2)), h + draw(st.integers(0, 4)), w + draw(st.integers(0, 6))
    attributes: dict[str, object] = {**window, "kernel_shape": kernel, "group": group}
    _window_attributes(draw, mutated, attributes, ["kernel_shape", "strides", "pads", "dilations", "group"])
    # K follows the (possibly hostile) attributes where they make sense, so that a huge stride or pad is reached.
    ho, wo = window_output(attributes, h, w)
    shapes = {"X": (n, c, h, w), "K": (n, group * kernel[0] * kernel[1], max(ho, 0), max(wo, 0))}
    if isinstance(attributes["group"], int) and 0 < attributes["group"] <= 64:  # type: ignore[operator]
        kernel_ok = attributes["kernel_shape"]
        if isinstance(kernel_ok, list) and len(kernel_ok) == 2 and min(kernel_ok) > 0 and max(kernel_ok) <= 8:
            taps = int(attributes["group"]) * kernel_ok[0] * kernel_ok[1]  # type: ignore[call-overload]
            shapes["K"] = (n, taps, *shapes["K"][2:])
    if int(np.prod(shapes["K"])) > REFERENCE_ELEMENTS:
        shapes["K"] = (n, shapes["K"][1], 1, 1)
        mutated.append("K too large to feed")
    mutation = draw(st.sampled_from(["none"] * 4 + ["x_rank", "k_rank", "k_channels", "k_size", "k_batch", "zero"]))
    if mutation == "x_rank":
        shapes["X"] = draw(st.sampled_from([shapes["X"][1:], (*shapes["X"], 1)]))
    elif mutation == "k_rank":
        shapes["K"] = shapes["K"][:3]
    elif mutation == "k_channels":
        shapes["K"] = (n, shapes["K"][1] + draw(st.sampled_from([1, -1])), *shapes["K"][2:])
    elif mutation == "k_size":
        shapes["K"] = (n, shapes["K"][1], shapes["K"][2] + 1, max(shapes["K"][3] - 1, 0))
    elif mutation == "k_batch":
        shapes["K"] = (n + 1, *shapes["K"][1:])
    elif mutation == "zero":
        axis = draw(st.integers(0, 3))
        shapes["X"] = tuple(0 if i == axis else d for i, d in enumerate(shapes["X"]))
    if mutation != "none":
        mutated.append(mutation)
    return shapes, attributes, mutated


def window_output(attributes: dict[str, object], h: int, w: int) -> tuple[int, int]:
    """The output size the attributes give, or (1, 1) when they are not a valid window description."""
    try:
        kernel, strides = attributes["kernel_shape"], attributes["strides"]
        pads, dilations = attributes["pads"], attributes["dilations"]
        sizes = tuple(
            conv_size(x, kernel[a], strides[a], pads[a], pads[a + 2], dilations[a])  # type: ignore[index]
            for a, x in enumerate((h, w))
        )
    except (IndexError, ZeroDivisionError):
        return 1, 1
    if min(*kernel, *strides, *dilations) < 1 or min(pads) < 0:  # type: ignore[call-overload]
        return 1, 1
    return sizes  # type: ignore[return-value]


@SETTINGS
@given(case=involution_cases(), seed=st.integers(0, 2**16))
# Issue 8, finding 4: scratch that grew with the stride (1 GiB, 2 GiB with a one-row pad); a 2**24 dilation.
@example(
    case=({"X": (1, 1, 1, 1), "K": (1, 1, 1, 1)}, {**_WINDOW, "kernel_shape": [1, 1], "strides": [1, _BIG]}, ["s"]),
    seed=3,
)
@example(
    case=(
        {"X": (1, 1, 1, 1), "K": (1, 2, 1, 1)},
        {**_WINDOW, "kernel_shape": [2, 1], "strides": [1, _BIG], "pads": [1, 0, 0, 0]},
        ["s"],
    ),
    seed=4,
)
@example(
    case=({"X": (1, 2, 3, 4), "K": (1, 2, 3, 4)}, {**_WINDOW, "kernel_shape": [1, 2], "dilations": [1, _BIG]}, ["d"]),
    seed=5,
)
def test_involution2d_fuzz(worker: Worker, case: tuple, seed: int) -> None:
    shapes, attributes, mutated = case
    feeds = _random(np.random.default_rng(seed), shapes)

    def reference(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        return involution2d_reference(x, k, **attributes)  # type: ignore[arg-type]

    check(
        worker, "Involution2d", feeds, attributes, mutated, reference, reference, _big_padded(shapes["X"], attributes)
    )


@st.composite
def lambda_cases(draw: st.DrawFn) -> tuple[dict[str, tuple[int, ...]], dict[str, object], list[str]]:
    mutated: list[str] = []
    n, heads, dim_k, dim_u, dim_v = (draw(st.integers(1, 3)) for _ in range(5))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    # Local kernels wider than the map are valid: most taps then read only padding.
    r = draw(st.sampled_from([None, 1, 3, 5, 9, 23]))
    shapes = {
        "Q": (n, heads * dim_k, h, w),
        "Kx": (n, dim_k * dim_u, h, w),
        "V": (n, dim_v * dim_u, h, w),
        "P": (dim_k, dim_u, 1, r, r) if r else (h * w, h * w, dim_k, dim_u),
    }
    attributes: dict[str, object] = {"num_heads": heads}
    if draw(st.integers(0, 4)) == 0:
        attributes["num_heads"] = draw(st.sampled_from((*SMALL_BAD, *HUGE, heads + 1, heads * 2)))
        mutated.append(f"num_heads={attributes['num_heads']}")
    mutation = draw(
        st.sampled_from(
            ["none"] * 4
            + ["q_rank", "p_rank", "r_even", "p_keys", "p_intra", "e_positions", "kx_channels", "v_channels"]
            + ["batch", "size", "zero", "p_zero"]
        )
    )
    if mutation == "q_rank":
        shapes["Q"] = shapes["Q"][1:]
    elif mutation == "p_rank":
        shapes["P"] = draw(st.sampled_from([shapes["P"][:3], (*shapes["P"], 1), (dim_k, dim_u, 2, 3, 3)]))
    elif mutation == "r_even":
        shapes["P"] = (dim_k, dim_u, 1, 2, 2) if draw(st.booleans()) else (dim_k, dim_u, 1, 3, 5)
    elif mutation == "p_keys":
        shapes["P"] = (dim_k + 1, *shapes["P"][1:]) if r else (h * w, h * w, dim_k + 1, dim_u)
    elif mutation == "p_intra":
        shapes["P"] = (dim_k, dim_u + 1, *shapes["P"][2:]) if r else (h * w, h * w, dim_k, dim_u + 1)
    elif mutation == "e_positions":
        shapes["P"] = (h * w + 1, h * w, dim_k, dim_u)
    elif mutation == "kx_channels":
        shapes["Kx"] = (n, dim_k * dim_u + 1, h, w)
    elif mutation == "v_channels":
        shapes["V"] = (n, dim_v * dim_u + (1 if dim_u > 1 else 0), h + (0 if dim_u > 1 else 1), w)
    elif mutation == "batch":
        key = draw(st.sampled_from(["Kx", "V"]))
        shapes[key] = (n + 1, *shapes[key][1:])
    elif mutation == "size":
        shapes["V"] = (n, dim_v * dim_u, h, w + 1)
    elif mutation == "zero":
        key, axis = draw(st.sampled_from(["Q", "Kx", "V"])), draw(st.integers(0, 3))
        shapes[key] = tuple(0 if i == axis else d for i, d in enumerate(shapes[key]))
    elif mutation == "p_zero":
        axis = draw(st.integers(0, len(shapes["P"]) - 1))
        shapes["P"] = tuple(0 if i == axis else d for i, d in enumerate(shapes["P"]))
    if mutation != "none":
        mutated.append(mutation)
    return shapes, attributes, mutated


@SETTINGS
@given(case=lambda_cases(), seed=st.integers(0, 2**16))
# A local kernel (r = 23) far wider than a 2 x 3 map, as in LambdaResNet's last stage.
@example(
    case=({"Q": (1, 4, 2, 3), "Kx": (1, 2, 2, 3), "V": (1, 3, 2, 3), "P": (2, 1, 1, 23, 23)}, {"num_heads": 2}, ["r"]),
    seed=6,
)
def test_lambda_fuzz(worker: Worker, case: tuple, seed: int) -> None:
    shapes, attributes, mutated = case
    feeds = _random(np.random.default_rng(seed), shapes)
    heads = int(attributes["num_heads"])  # type: ignore[call-overload]

    def reference(q: np.ndarray, keys: np.ndarray, values: np.ndarray, position: np.ndarray) -> np.ndarray:
        return lambda_reference(q, keys, values, position, heads)

    check(worker, "Lambda", feeds, attributes, mutated, reference, reference, 0)
