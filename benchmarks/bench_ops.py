"""Benchmark of holocron's custom ops: eager PyTorch vs onnxruntime (standard-op fallback, holocron kernel).

For each op at fixed shapes, in one run and with the same number of threads everywhere (each timing is the lowest of
three medians, the variants of a case measured in turn, so that load from other processes skews no ratio): the eager
torch op
(``torch.ops.holocron.*``, the heavy part of the layer: the native CPU kernels of ``libholocron_torch.so`` where it
is loaded, else the pure-torch ones; ``HOLOCRON_PURE_TORCH=1`` times the latter), onnxruntime running the op's
standard-ONNX fallback (inlined), onnxruntime running holocron's kernel, and for Add2d onnxruntime's Conv of the same
shape (the multiply-accumulate baseline: the adder kernel needs a subtraction, an absolute value and an addition per
tap where Conv needs one fused multiply-add). Involution2d
is also compared with its memory floor: the bytes it must read and write over the copy bandwidth measured here.
For Add2d, the kernel and Conv are timed a second time on one core: one-thread sessions, timed as the calling
thread's CPU time, so that other processes on a loaded machine inflate neither figure nor their ratio.
Then the peak memory of an Add2d session, and the demo model eager vs onnxruntime with kernels vs fallback.

Usage: ``python benchmarks/bench_ops.py [--threads 2] [--json results.json] [--skip-demo] [--only Add2d]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from _models import conv_model, fallback_model, node_model, session
from _timing import copy_bandwidth, interleaved_medians

import holocron.ops

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


def add_one_core(result: Result, case: Case, model: onnx.ModelProto) -> None:
    """Kernel and Conv on one core: one-thread sessions, timed as the calling thread's CPU time."""
    kernel = session(model, 1, kernels=True)
    conv = session(conv_model(case.inputs["X"], case.weights["W"], case.attributes), 1, kernels=False)
    runs: dict[str, Callable[[], object]] = {
        "kernel 1-core cpu": lambda: kernel.run(None, case.inputs),
        "conv 1-core cpu": lambda: conv.run(None, case.inputs),
    }
    result.timings_ms.update(interleaved_medians(runs, clock=time.thread_time))
    t = result.timings_ms
    result.ratios["kernel / conv 1-core cpu"] = t["kernel 1-core cpu"] / t["conv 1-core cpu"]


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
        np.savez(feeds, **case.inputs)
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


def print_table(results: list[Result]) -> None:
    columns = ["eager", "fallback", "kernel", "conv", "memory floor", "kernel 1-core cpu", "conv 1-core cpu"]
    ratio_names = [
        "eager / kernel",
        "fallback / kernel",
        "kernel / conv",
        "kernel / conv 1-core cpu",
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-demo", action="store_true", help="do not benchmark the demo model")
    parser.add_argument("--only", help="only the cases whose name contains this text (e.g. Add2d)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    results: list[Result] = []
    all_cases = [case for case in cases() if args.only is None or args.only in case.name]
    for case in all_cases:
        result = bench_case(case, args.threads)
        if case.op_type == "Involution2d":
            add_memory_floor(result, case, args.threads)
        results.append(result)
    if all_cases and all_cases[0].op_type == "Add2d":
        results[0].notes["peak memory"] = peak_memory(all_cases[0])
    demo = None if args.skip_demo else bench_demo(args.threads)
    if isinstance(demo, Result):
        results.append(demo)

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"threads: {args.threads}, onnxruntime CPU, float32, load average (1, 5, 15 min) at the end: {load}")
    print_table(results)
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
            "results": [asdict(r) for r in results],
            "demo_skipped": skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
