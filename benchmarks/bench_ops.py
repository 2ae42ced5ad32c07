"""Benchmark of holocron's custom ops: eager PyTorch vs onnxruntime (standard-op fallback, holocron kernel).

For each op at fixed shapes, in one run and with the same number of threads everywhere (each timing is the lowest of
three medians, the variants of a case measured in turn, so that load from other processes skews no ratio): the eager
torch op
(``torch.ops.holocron.*``, the heavy part of the layer: the native CPU kernels of ``libholocron_torch.so`` where it
is loaded, else the pure-torch ones; ``HOLOCRON_PURE_TORCH=1`` times the latter), onnxruntime running the op's
standard-ONNX fallback (inlined), onnxruntime running holocron's kernel, and for Add2d onnxruntime's Conv of the same
shape (the multiply-accumulate baseline: Conv needs one fused multiply-add per tap, the adder kernel a min and an
accumulation through |x - w| = x + w - 2 min(x, w)); beside it the floor, the best kernel / conv ratio this CPU
allows: the peak rate of fused multiply-adds over that of min + accumulate on one core, measured by
``benchmarks/floor.cc`` (compiled with the system C++ compiler) for the instruction set the kernels run
(``HOLOCRON_CPU_ISA`` caps it). Involution2d
is also compared with its memory floor: the bytes it must read and write over the copy bandwidth measured here.
For Add2d, the kernel and Conv are timed a second time on one core: one-thread sessions, timed as the calling
thread's CPU time, so that other processes on a loaded machine inflate neither figure nor their ratio.

Peer rows (``LambdaLayer ...``): the whole lambda layer, ours (``holocron.nn.LambdaLayer`` exported with the Lambda
node, onnxruntime with the kernel) against timm's (``timm.layers.lambda_layer.LambdaLayer`` exported to plain ONNX by
the TorchScript exporter, standard onnxruntime) at timm's per-layer configuration of LambdaResNet (r = 9, 4 heads,
key depth 16, out channels = in channels): 16 x 16 with C = 256 and C = 512, 8 x 8 with C = 512, batch 1. Both are
timed like the other rows (same threads, lowest of three interleaved medians) and on one core (one-thread sessions,
the thread's CPU time). timm is optional (``pip install holocron[bench]``); without it the rows say so.

Instruction sets side by side (where the kernels run AVX-512 or AVX2; ``--no-isa-pair`` skips them): each op's
kernel under the instruction set it runs and under the next narrower one (AVX-512 against the AVX2 cap), in the same
run, alternated round by round. Two copies of the op library are loaded; each reads ``HOLOCRON_CPU_ISA`` once, at its
first kernel call, so the narrower copy's sessions are built and first run with the cap set, and each copy then says
which instruction set it runs (``HolocronCpuIsa``). Timed on one core (thread CPU time) and with the run's threads,
the latter with onnxruntime's spinning workers off in both sessions, so that the idle session's threads take no core
from the timed one; wide / narrow below 1 means the wider instruction set is faster.

Then the peak memory of an Add2d session, and the demo model eager vs onnxruntime with kernels vs fallback.

Usage: ``python benchmarks/bench_ops.py [--threads 2] [--json results.json] [--skip-demo] [--only Add2d]``
(``--only LambdaLayer`` runs just the peer rows, ``--only Lambda`` the Lambda op rows and the peer rows).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import torch
from _models import OPSET, conv_model, fallback_model, node_model, session
from _timing import copy_bandwidth, interleaved_medians

import holocron.ops

if TYPE_CHECKING:
    import onnxruntime as ort

HERE = Path(__file__).resolve().parent
MEMORY_COPY_BYTES = 256 * 2**20  # far beyond the last-level cache of usual CPUs


@dataclass
class Case:
    """One op at one shape: ONNX inputs (graph inputs, then weights as initializers) and its eager counterpart."""

    name: str
    op_type: str
    inputs: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    attributes: dict[str, object]
    eager: Callable[[], torch.Tensor]
    with_conv: bool = False


@dataclass
class Result:
    name: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


def randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def add2d_case(rng: np.random.Generator, shape: tuple[int, int, int, int], out_channels: int, stride: int) -> Case:
    x = randn(rng, *shape)
    w = randn(rng, out_channels, shape[1], 3, 3)
    b = randn(rng, out_channels)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    name = f"Add2d {shape}->{out_channels} k3 s{stride} p1"
    return Case(
        name,
        "Add2d",
        {"X": x},
        {"W": w, "B": b},
        {"strides": [stride, stride], "pads": [1, 1, 1, 1]},
        lambda: holocron.ops.add2d(tx, tw, tb, [stride, stride], [1, 1], [1, 1], 1, False, 1e-14),
        with_conv=True,
    )


def involution_case(rng: np.random.Generator) -> Case:
    x = randn(rng, 1, 64, 56, 56)
    k = randn(rng, 1, 4 * 49, 56, 56, scale=0.1)
    tx, tk = torch.from_numpy(x), torch.from_numpy(k)
    attributes = {"kernel_shape": [7, 7], "pads": [3, 3, 3, 3], "group": 4}
    return Case(
        "Involution2d (1, 64, 56, 56) k7 g4",
        "Involution2d",
        {"X": x, "K": k},
        {},
        attributes,
        lambda: holocron.ops.involution2d(tx, tk, [7, 7], [1, 1], [3, 3], [1, 1], 4),
    )


def lambda_case(rng: np.random.Generator, r: int | None) -> Case:
    heads, dim_k, dim_u, dim_v, h, w = 4, 16, 1, 16, 28, 28
    q = randn(rng, 1, heads * dim_k, h, w)
    keys = randn(rng, 1, dim_k * dim_u, h, w)
    values = randn(rng, 1, dim_v * dim_u, h, w)
    position = randn(rng, *((dim_k, dim_u, 1, r, r) if r else (h * w, h * w, dim_k, dim_u)), scale=0.1)
    tensors = [torch.from_numpy(a) for a in (q, keys, values, position)]
    kind = f"r={r}" if r else f"global n={h * w}"
    return Case(
        f"Lambda (1, 64, 28, 28) dim_k 16 heads 4 {kind}",
        "Lambda",
        {"Q": q, "Kx": keys, "V": values},
        {"P": position},
        {"num_heads": heads},
        lambda: holocron.ops.lambda_layer(*tensors, heads),
    )


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    return [
        add2d_case(rng, (1, 64, 56, 56), 64, 1),
        add2d_case(rng, (8, 16, 32, 32), 16, 1),
        add2d_case(rng, (1, 128, 28, 28), 128, 2),
        involution_case(rng),
        lambda_case(rng, 7),
        lambda_case(rng, None),
    ]


def no_grad(run: Callable[[], object]) -> Callable[[], object]:
    def wrapped() -> object:
        with torch.no_grad():
            return run()

    return wrapped


def bench_case(case: Case, threads: int) -> Result:
    result = Result(case.name)
    model = node_model(case.op_type, case.inputs, case.weights, case.attributes)
    kernel = session(model, threads, kernels=True)
    runs: dict[str, Callable[[], object]] = {
        "kernel": lambda: kernel.run(None, case.inputs),
        "eager": no_grad(case.eager),
    }
    fallback = fallback_model(model)
    if fallback is not None:
        runner = session(fallback, threads, kernels=False)
        runs["fallback"] = lambda: runner.run(None, case.inputs)
    if case.with_conv:
        conv = session(conv_model(case.inputs["X"], case.weights["W"], case.attributes), threads, kernels=False)
        runs["conv"] = lambda: conv.run(None, case.inputs)
    result.timings_ms.update(interleaved_medians(runs))
    t = result.timings_ms
    result.ratios["eager / kernel"] = t["eager"] / t["kernel"]
    if "fallback" in t:
        result.ratios["fallback / kernel"] = t["fallback"] / t["kernel"]
    if "conv" in t:
        result.ratios["kernel / conv"] = t["kernel"] / t["conv"]
        add_one_core(result, case, model)
    return result


def one_core(result: Result, models: dict[str, tuple[onnx.ModelProto, bool]], feeds: dict[str, np.ndarray]) -> None:
    """Per ``name: (model, kernels)``, ``"<name> 1-core cpu"``: a one-thread session timed as the calling thread's
    CPU time (its nodes run on that thread), which other processes on a loaded machine do not inflate."""
    sessions = {name: session(model, 1, kernels=kernels) for name, (model, kernels) in models.items()}
    runs: dict[str, Callable[[], object]] = {
        f"{name} 1-core cpu": functools.partial(runner.run, None, feeds) for name, runner in sessions.items()
    }
    result.timings_ms.update(interleaved_medians(runs, clock=time.thread_time))


def add_one_core(result: Result, case: Case, model: onnx.ModelProto) -> None:
    """Kernel and Conv on one core: one-thread sessions, timed as the calling thread's CPU time."""
    conv = conv_model(case.inputs["X"], case.weights["W"], case.attributes)
    one_core(result, {"kernel": (model, True), "conv": (conv, False)}, case.inputs)
    t = result.timings_ms
    result.ratios["kernel / conv 1-core cpu"] = t["kernel 1-core cpu"] / t["conv 1-core cpu"]


#: timm's per-layer configuration of LambdaResNet: (channels, side) of the peer rows, batch 1.
PEER_SHAPES = ((256, 16), (512, 16), (512, 8))
PEER_R, PEER_HEADS, PEER_DIM_K = 9, 4, 16


def peer_name(channels: int, side: int) -> str:
    return f"LambdaLayer (1, {channels}, {side}, {side}) r={PEER_R} heads {PEER_HEADS} dim_k {PEER_DIM_K}"


def peer_configurations(channels: int | str) -> dict[str, str]:
    """The two layers a peer row compares, as constructed (printed with the table)."""
    return {
        "ours": f"holocron.nn.LambdaLayer(in_channels={channels}, out_channels={channels}, dim_k={PEER_DIM_K},"
        f" r={PEER_R}, num_heads={PEER_HEADS}, dim_u=1), exported with the Lambda node (BatchNorms folded into the"
        " q/v projections), onnxruntime with holocron's kernels",
        "timm": f"timm.layers.lambda_layer.LambdaLayer(dim={channels}, dim_out={channels}, stride=1,"
        f" num_heads={PEER_HEADS}, dim_head={PEER_DIM_K}, r={PEER_R}, qk_ratio=1.0, qkv_bias=False) (u = 1; one fused"
        " q/k/v projection; the position lambda a Conv3d with bias), torch.onnx.export(dynamo=False), standard"
        " onnxruntime",
    }


def timm_lambda_layer() -> type | str:
    """timm's LambdaLayer class, or why it cannot be imported."""
    try:
        from timm.layers.lambda_layer import LambdaLayer
    except ImportError as error:
        return f"timm not installed ({error})"
    except Exception as error:  # e.g. a torchvision built for another torch fails at import with a RuntimeError
        return f"timm not importable: {type(error).__name__}: {error}"
    return LambdaLayer


def bench_peer(channels: int, side: int, threads: int) -> Result:
    """Ours vs timm's whole lambda layer at one of timm's per-layer shapes (see the module docstring)."""
    result = Result(peer_name(channels, side))
    result.notes["configurations"] = peer_configurations(channels)
    timm_layer = timm_lambda_layer()
    if isinstance(timm_layer, str):
        result.notes["skipped"] = timm_layer
        return result
    from holocron.export import to_onnx_proto
    from holocron.nn import LambdaLayer

    torch.manual_seed(0)
    ours = LambdaLayer(channels, channels, PEER_DIM_K, r=PEER_R, num_heads=PEER_HEADS, dim_u=1).eval()
    theirs = timm_layer(
        channels, channels, stride=1, num_heads=PEER_HEADS, dim_head=PEER_DIM_K, r=PEER_R, qkv_bias=False
    ).eval()
    x = torch.randn(1, channels, side, side, generator=torch.Generator().manual_seed(0))
    ours_model = to_onnx_proto(ours, x, custom_ops=True)
    feeds = {ours_model.graph.input[0].name: x.numpy()}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice, not a problem here
        torch.onnx.export(
            theirs,
            (x,),
            buffer,  # type: ignore[arg-type]  # a file object works
            dynamo=False,
            opset_version=OPSET,
            input_names=list(feeds),
        )
    timm_model = onnx.load_from_string(buffer.getvalue())
    ours_session = session(ours_model, threads, kernels=True)
    timm_session = session(timm_model, threads, kernels=False)
    runs: dict[str, Callable[[], object]] = {
        "ours": lambda: ours_session.run(None, feeds),
        "timm": lambda: timm_session.run(None, feeds),
    }
    result.timings_ms.update(interleaved_medians(runs))
    one_core(result, {"ours": (ours_model, True), "timm": (timm_model, False)}, feeds)
    t = result.timings_ms
    result.ratios["ours / timm"] = t["ours"] / t["timm"]
    result.ratios["ours / timm 1-core cpu"] = t["ours 1-core cpu"] / t["timm 1-core cpu"]
    return result


def add_memory_floor(result: Result, case: Case, threads: int) -> None:
    """Involution's floor: read X and K, write Y, at the copy bandwidth of this machine.

    The floor uses the bandwidth of a copy too large for the caches (main memory); the bandwidth of a copy of the
    op's own working-set size (which stays in cache here, as the op's data does in a timing loop) gives a second,
    stricter floor, reported alongside.
    """
    x, k = case.inputs["X"], case.inputs["K"]
    traffic = x.nbytes + k.nbytes + x.nbytes
    memory_bandwidth = copy_bandwidth(MEMORY_COPY_BYTES, threads)
    cached_bandwidth = copy_bandwidth(traffic // 2, threads)
    floor_ms = 1e3 * traffic / memory_bandwidth
    cached_floor_ms = 1e3 * traffic / cached_bandwidth
    result.timings_ms["memory floor"] = floor_ms
    result.ratios["kernel / memory floor"] = result.timings_ms["kernel"] / floor_ms
    result.notes["bytes moved"] = traffic
    result.notes["copy bandwidth GB/s (main memory)"] = memory_bandwidth / 1e9
    result.notes["copy bandwidth GB/s (working-set size, cached)"] = cached_bandwidth / 1e9
    result.notes["cached floor ms"] = cached_floor_ms
    result.notes["kernel / cached floor"] = result.timings_ms["kernel"] / cached_floor_ms


def peak_memory(case: Case) -> dict[str, object]:
    """Peak resident memory growth of a session running ``case`` (kernel and fallback), in fresh processes."""
    model = node_model(case.op_type, case.inputs, case.weights, case.attributes)
    tensors = (*case.inputs.values(), *case.weights.values())
    out_elements = case.inputs["X"].shape[0] * case.weights["W"].shape[0] * case.inputs["X"].shape[2] ** 2
    report: dict[str, object] = {"tensors MB": (sum(a.nbytes for a in tensors) + 4 * out_elements) / 2**20}
    with tempfile.TemporaryDirectory() as folder:
        feeds = Path(folder) / "feeds.npz"
        np.savez(feeds, **case.inputs)  # type: ignore[arg-type]  # numpy's stub types the keywords as allow_pickle
        for kind, proto in (("kernel", model), ("fallback", fallback_model(model))):
            if proto is None:
                continue
            path = Path(folder) / f"{kind}.onnx"
            onnx.save(proto, path)
            done = subprocess.run(
                [sys.executable, str(HERE / "_peak_memory.py"), str(path), str(feeds), kind],
                capture_output=True,
                text=True,
                check=True,
            )
            report[f"{kind} session peak growth MB"] = int(done.stdout.strip()) / 2**20
    return report


def bench_demo(threads: int) -> Result | str:
    """The demo model eager vs onnxruntime with kernels vs the fallback; a reason string when it cannot run."""
    try:
        from holocron.export import DEMO_INPUT_SHAPE, build_demo_model, to_onnx_proto
    except ImportError as error:
        return f"demo model unavailable: {error}"
    model = build_demo_model().eval()
    x = torch.randn(DEMO_INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    try:
        with_ops = to_onnx_proto(model, x, custom_ops=True)
        without_ops = to_onnx_proto(model, x, custom_ops=False)
    except Exception as error:  # the export pipeline is another component; report and go on
        return f"demo export failed: {type(error).__name__}: {error}"
    feeds = {with_ops.graph.input[0].name: x.numpy()}
    result = Result(f"demo model {tuple(DEMO_INPUT_SHAPE)}")
    kernel = session(with_ops, threads, kernels=True)
    fallback = session(without_ops, threads, kernels=False)
    runs = {
        "eager": no_grad(lambda: model(x)),
        "kernel": lambda: kernel.run(None, feeds),
        "fallback": lambda: fallback.run(None, feeds),
    }
    result.timings_ms.update(interleaved_medians(runs))
    t = result.timings_ms
    result.ratios["eager / kernel"] = t["eager"] / t["kernel"]
    result.ratios["fallback / kernel"] = t["fallback"] / t["kernel"]
    return result


class IsaPair:
    """Two copies of the op library, one per instruction set, so that one process times both (see the docstring)."""

    def __init__(self, wide: str, narrow: str, folder: Path) -> None:
        from holocron.runtime import library_path

        self.wide, self.narrow = wide, narrow
        library = Path(library_path())
        self.copies = {isa: folder / f"{isa}-{library.name}" for isa in (wide, narrow)}
        for copy in self.copies.values():
            shutil.copyfile(library, copy)

    def session(
        self, isa: str, model: onnx.ModelProto, threads: int, feeds: dict[str, np.ndarray]
    ) -> ort.InferenceSession:
        """A session on ``isa``'s copy, run once under that cap so the copy fixes its instruction set."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.register_custom_ops_library(str(self.copies[isa]))
        saved = os.environ.get("HOLOCRON_CPU_ISA")
        os.environ["HOLOCRON_CPU_ISA"] = isa
        try:
            runner = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            runner.run(None, feeds)
        finally:
            if saved is None:
                del os.environ["HOLOCRON_CPU_ISA"]
            else:
                os.environ["HOLOCRON_CPU_ISA"] = saved
        running = self.running_isa(isa)
        if running != isa:
            raise RuntimeError(f"the {isa} copy of the op library runs {running}: the pair would compare nothing")
        return runner

    def running_isa(self, isa: str) -> str:
        """The instruction set ``isa``'s copy runs (the same handle onnxruntime loaded, as both name the file)."""
        return library_isa(self.copies[isa])


def library_isa(library: str | os.PathLike[str]) -> str:
    """The instruction set the op library at ``library`` runs its CPU kernels with (its ``HolocronCpuIsa``; the first
    call fixes it, under the ``HOLOCRON_CPU_ISA`` of that moment)."""
    query = ctypes.CDLL(str(library)).HolocronCpuIsa
    query.restype = ctypes.c_char_p
    return query().decode()


def add_isa_pair(result: Result, case: Case, pair: IsaPair, threads: int) -> None:
    """The kernel under ``pair.wide`` and ``pair.narrow``, alternated: on one core and with ``threads``."""
    model = node_model(case.op_type, case.inputs, case.weights, case.attributes)
    variants = (("1-core cpu", 1, time.thread_time), (f"{threads} threads", threads, time.perf_counter))
    for label, count, clock in variants:
        sessions = {isa: pair.session(isa, model, count, case.inputs) for isa in (pair.wide, pair.narrow)}
        runs: dict[str, Callable[[], object]] = {
            f"{isa} {label}": functools.partial(runner.run, None, case.inputs) for isa, runner in sessions.items()
        }
        result.timings_ms.update(interleaved_medians(runs, clock=clock))
        t = result.timings_ms
        result.ratios[f"{pair.wide} / {pair.narrow} {label}"] = t[f"{pair.wide} {label}"] / t[f"{pair.narrow} {label}"]


def print_isa_pairs(results: list[Result], pair: IsaPair, threads: int) -> None:
    labels = ["1-core cpu", f"{threads} threads"]
    columns = [f"{isa} {label}" for label in labels for isa in (pair.wide, pair.narrow)]
    ratio_names = [f"{pair.wide} / {pair.narrow} {label}" for label in labels]
    print(f"\ninstruction sets side by side: the kernel with {pair.wide} and with the {pair.narrow} cap, alternated")
    print(f"{'case':48} " + " ".join(f"{c:>17}" for c in columns) + "  " + "  ".join(ratio_names))
    for r in results:
        if not all(c in r.timings_ms for c in columns):
            continue
        times = " ".join(f"{r.timings_ms[c]:17.3f}" for c in columns)
        ratios = "  ".join(f"{r.ratios[n]:{len(n)}.2f}" for n in ratio_names)
        print(f"{r.name:48} {times}  {ratios}")
    print(
        f"(milliseconds, lowest of 3 medians; {threads} threads: wall time, onnxruntime's worker spinning off in both"
        f" sessions; below 1: {pair.wide} is faster)"
    )


FLOOR_SOURCE = Path(__file__).with_name("floor.cc")
ISA_ORDER = ["baseline", "avx2", "avx512"]


def measure_floor() -> dict[str, dict[str, float]] | str:
    """Peak per-core rates (G lanes/s) of Conv's and Add2d's instruction mixes on this CPU, per instruction set.

    ``benchmarks/floor.cc`` is compiled with the system C++ compiler and run on one thread: ``fma`` (Conv's
    multiply-accumulate), ``min+fma`` (the kernel's adder term through the min identity) and ``sub+and+add`` (the
    exact adder term). A string says why there are no figures.
    """
    if platform.machine() not in ("x86_64", "AMD64"):
        return "floor: x86-64 only"
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        return "floor: no C++ compiler on PATH"
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "floor"
        build = subprocess.run([compiler, "-O2", "-o", str(program), str(FLOOR_SOURCE)], capture_output=True, text=True)
        if build.returncode != 0:
            return f"floor: {compiler} could not build {FLOOR_SOURCE.name}: {build.stderr.strip()[-300:]}"
        run = subprocess.run([str(program)], capture_output=True, text=True, timeout=300)
    rates: dict[str, dict[str, float]] = {}
    for line in run.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] in ISA_ORDER:
            rates.setdefault(fields[0], {})[fields[1]] = float(fields[2])
    return rates or f"floor: {run.stdout.strip()}"


def active_isa(rates: dict[str, dict[str, float]]) -> str | None:
    """The widest measured instruction set that HOLOCRON_CPU_ISA (if set) allows: the one the kernels run."""
    cap = os.environ.get("HOLOCRON_CPU_ISA", ISA_ORDER[-1])
    allowed = ISA_ORDER[: ISA_ORDER.index(cap) + 1] if cap in ISA_ORDER else ISA_ORDER
    measured = [isa for isa in allowed if isa in rates]
    return measured[-1] if measured else None


def print_floor(rates: dict[str, dict[str, float]] | str, isa: str | None) -> None:
    if isinstance(rates, str):
        print(rates)
        return
    print(
        "\nfloor, one core (benchmarks/floor.cc, G lanes/s; floor = fma / min+fma, the best kernel / conv ratio;"
        f" the table's floor column is {isa}'s, the instruction set the kernels ran):"
    )
    for isa, mix in rates.items():
        figures = ", ".join(f"{name} {value:.1f}" for name, value in mix.items())
        print(
            f"  {isa}: {figures}; floor {mix['fma'] / mix['min+fma']:.2f}"
            f" (the exact loop's: {mix['fma'] / mix['sub+and+add']:.2f})"
        )


def print_table(results: list[Result]) -> None:
    columns = ["eager", "fallback", "kernel", "conv", "memory floor", "kernel 1-core cpu", "conv 1-core cpu"]
    ratio_names = [
        "eager / kernel",
        "fallback / kernel",
        "kernel / conv",
        "kernel / conv 1-core cpu",
        "floor",
        "kernel / memory floor",
    ]
    header = f"{'case':48} " + " ".join(f"{c:>17}" for c in columns) + "  " + "  ".join(ratio_names)
    print(header)
    for r in results:
        times = " ".join(f"{r.timings_ms[c]:17.3f}" if c in r.timings_ms else f"{'-':>17}" for c in columns)
        ratios = "  ".join(f"{r.ratios[n]:{len(n)}.2f}" if n in r.ratios else f"{'-':>{len(n)}}" for n in ratio_names)
        print(f"{r.name:48} {times}  {ratios}")
    eager = "native" if holocron.ops.torch_library_loaded() else "pure-torch"
    print(
        "(milliseconds: per variant the lowest of 3 medians, variants measured in turn; eager = torch.ops.holocron op,"
        f" {eager} kernels; fallback = inlined standard-ONNX function; 1-core cpu: one-thread sessions, the thread's"
        " CPU time)"
    )


def print_peers(peers: list[Result], threads: int) -> None:
    """The peer table: ours vs timm's lambda layer, the configurations compared, and rows that could not run."""
    columns = ["ours", "timm", "ours 1-core cpu", "timm 1-core cpu"]
    ratio_names = ["ours / timm", "ours / timm 1-core cpu"]
    print(
        f"\npeer rows: our lambda layer (onnxruntime, Lambda kernel) vs timm's (plain ONNX, standard onnxruntime),"
        f" {threads} threads and 1 core"
    )
    print(f"{'case':50} " + " ".join(f"{c:>15}" for c in columns) + "  " + "  ".join(ratio_names))
    for r in peers:
        if "skipped" in r.notes:
            print(f"{r.name:50} {r.notes['skipped']}")
            continue
        times = " ".join(f"{r.timings_ms[c]:15.3f}" for c in columns)
        ratios = "  ".join(f"{r.ratios[n]:{len(n)}.2f}" for n in ratio_names)
        print(f"{r.name:50} {times}  {ratios}")
    print(
        "(milliseconds as above; ours / timm < 1: ours is faster; 1-core cpu: one-thread sessions, the thread's CPU"
        " time)"
    )
    for name, text in peer_configurations("C").items():
        print(f"{name}: {text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-demo", action="store_true", help="do not benchmark the demo model")
    parser.add_argument("--only", help="only the cases whose name contains this text (e.g. Add2d)")
    parser.add_argument(
        "--no-isa-pair", action="store_true", help="do not time each kernel with the next narrower instruction set"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start_load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{v:.2f}' for v in start_load)}", flush=True)

    results: list[Result] = []
    all_cases = [case for case in cases() if args.only is None or args.only in case.name]
    floor = measure_floor() if any(case.with_conv for case in all_cases) else None
    isa = active_isa(floor) if isinstance(floor, dict) else None
    pair_folder = tempfile.TemporaryDirectory()
    pair = None
    if not args.no_isa_pair and all_cases:
        from holocron.runtime import library_path

        running = library_isa(library_path())  # the kernels' instruction set, as the sessions will load it
        if running in ISA_ORDER[1:]:
            pair = IsaPair(running, ISA_ORDER[ISA_ORDER.index(running) - 1], Path(pair_folder.name))
    for case in all_cases:
        result = bench_case(case, args.threads)
        if pair is not None:
            add_isa_pair(result, case, pair, args.threads)
        if case.op_type == "Involution2d":
            add_memory_floor(result, case, args.threads)
        if case.with_conv and isinstance(floor, dict) and isa is not None:
            result.ratios["floor"] = floor[isa]["fma"] / floor[isa]["min+fma"]
        results.append(result)
    peer_shapes = [s for s in PEER_SHAPES if args.only is None or args.only in peer_name(*s)]
    peers = [bench_peer(channels, side, args.threads) for channels, side in peer_shapes]
    if all_cases and all_cases[0].op_type == "Add2d":
        results[0].notes["peak memory"] = peak_memory(all_cases[0])
    demo = None if args.skip_demo else bench_demo(args.threads)
    if isinstance(demo, Result):
        results.append(demo)

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"threads: {args.threads}, onnxruntime CPU, float32, load average (1, 5, 15 min) at the end: {load}")
    if results:
        print_table(results)
    if pair is not None:
        print_isa_pairs(results, pair, args.threads)
    pair_folder.cleanup()
    if floor is not None:
        print_floor(floor, isa)
    if peers:
        print_peers(peers, args.threads)
    for result in results:
        for key, value in result.notes.items():
            print(f"{result.name}: {key}: {value}")
    if isinstance(demo, str):
        print(demo)
    if args.json:
        skipped = demo if isinstance(demo, str) else None
        payload = {
            "threads": args.threads,
            "load_average": os.getloadavg(),
            "load_average_start": start_load,
            "results": [asdict(r) for r in results],
            "peers": [asdict(r) for r in peers],
            "demo_skipped": skipped,
            "floor_g_lanes_per_s": floor,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
