"""End-to-end benchmark of the reference networks: eager PyTorch vs onnxruntime (standard-ONNX fallback, kernels).

For each network of ``holocron._networks.NETWORKS`` at full width and its full input size (CIFAR 32 x 32 for
AdderNet ResNet-20, 224 x 224 for RedNet-26 and LambdaResNet-26), with calibrated BatchNorms, exported once with a
dynamic batch with the holocron nodes and once as standard ONNX only (``custom_ops=False``), in one run and with the
same number of threads everywhere:

- batch 1: per variant the lowest of three medians, the variants measured in turn (as ``bench_ops.py`` does);
- batch 8: the median of three single runs, one run of each variant in turn (a run takes seconds);
- the kernels' speed-up vs eager and vs the fallback, against the targets of issue 10 (>= 3x and >= 1.5x at batch 1);
- the same on one core (unless ``--no-one-core``): one-thread onnxruntime sessions and eager under
  ``torch.set_num_threads(1)``, timed as the calling thread's CPU time (as ``bench_ops.py``'s one-core columns), which
  other processes on the machine do not inflate;
- the load average (``os.getloadavg``) at the start and the end of the run; a set of figures during which the
  one-minute load average exceeded ``MAX_LOAD`` (at its start or its end) prints as "no result" (the JSON keeps it);
- where the time goes at batch 1: onnxruntime's own profile (``SessionOptions.enable_profiling``) of the kernel and
  the fallback sessions, node durations summed by op type (the warm-up run left out), and the eager forward's
  ``torch.profiler`` table (self CPU time by op), on one thread (``threads`` with ``--no-one-core``);
- from those profiles, where eager runs the native kernels, the ceiling of eager / kernel: the ratio if holocron's
  ops took no time, in the kernel session and in eager (which runs the same C++ kernels through holocron's torch op
  library), i.e. what the rest of each graph (onnxruntime's Conv against torch's convolution, pooling, norms) allows.

Eager runs holocron's ops on their native kernels where the torch op library is loaded (the header says which);
``HOLOCRON_PURE_TORCH=1`` times eager on their pure-torch kernels instead, the code path of upstream holocron's layers
and of every install without the torch op library (``make bench`` runs both).

Usage: ``python benchmarks/bench_networks.py [--threads 2] [--networks NAME ...] [--batches 1 8] [--no-one-core]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from _models import session
from _timing import alternating_medians, interleaved_medians

import holocron.ops
from holocron._networks import NETWORKS, calibrate_batchnorm

#: Issue 10's targets for the kernels at batch 1: speed-up vs eager and vs the standard-ONNX fallback.
TARGETS = {"eager / kernel": 3.0, "fallback / kernel": 1.5}
#: The profile's op types, for the breakdowns: holocron's nodes are named by their op type.
HOLOCRON_OPS = ("Add2d", "Involution2d", "Lambda")
#: The prefix of holocron's ops in the eager forward's ``torch.profiler`` table (the torch op library's schemas).
HOLOCRON_TORCH_PREFIX = "holocron::"
PROFILED_RUNS = 3
TOP_OPS = 5
#: Above this one-minute load average (at the start or the end of a set of figures) they print as "no result".
MAX_LOAD = 3.0
VARIANTS = ("eager", "fallback", "kernel")
ONE_CORE = " 1-core cpu"


@dataclass
class Timing:
    network: str
    batch: int
    input_shape: tuple[int, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    #: Per set of figures ("threads", "1-core"), the one-minute load average at its start and its end.
    loads: dict[str, tuple[float, float]] = field(default_factory=dict)

    def loaded(self, figures: str) -> bool:
        return figures in self.loads and max(self.loads[figures]) > MAX_LOAD


@dataclass
class Breakdown:
    """Per op type, milliseconds per run and share of the summed node time."""

    network: str
    variant: str
    total_ms: float
    ops: list[tuple[str, float, float]]
    threads: int = 1

    def holocron_share(self) -> float:
        """The share of the summed op time in holocron's ops: nodes of ``HOLOCRON_OPS``, eager ops named
        ``holocron::*`` (their self time: on the pure-torch kernels only the ops' own overhead, as their aten calls
        profile apart, so no ceiling is taken from such a profile)."""
        return sum(share for op, _, share in self.ops if op in HOLOCRON_OPS or op.startswith(HOLOCRON_TORCH_PREFIX))


def ceiling(eager_ms: float, kernel_ms: float, eager: Breakdown, kernel: Breakdown) -> float:
    """eager / kernel if holocron's ops took no time in both: the measured times less their profiled holocron shares.

    ``eager_ms * (1 - s_e) / (kernel_ms * (1 - s_k))``, with ``s_e`` and ``s_k`` the shares of the eager forward's and
    the kernel session's op time in holocron's ops (``Breakdown.holocron_share``).
    """
    return eager_ms * (1.0 - eager.holocron_share()) / (kernel_ms * (1.0 - kernel.holocron_share()))


def build(name: str, size: int | None) -> tuple[torch.nn.Module, tuple[int, int, int, int]]:
    """The full-width network with calibrated BatchNorms, and its batch-1 input shape (side ``size`` if given)."""
    spec = NETWORKS[name]
    shape = spec.full_input_shape
    if size is not None and name != "addernet_resnet20":
        shape = (*shape[:2], size, size)
    model = spec.builder()  # the local lambda layers (r = 23) of LambdaResNet-26 take any input size
    # A batch of 2 gives every BatchNorm more than one value per channel, down to the 1 x 1 pooled features.
    return calibrate_batchnorm(model, (2, *shape[1:]), batches=1), shape


def ort_profile(proto: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int, kernels: bool) -> Counter[str]:
    """Microseconds per op type summed over ``PROFILED_RUNS`` runs after one warm-up run, from onnxruntime's profile."""
    import onnxruntime as ort

    from holocron.runtime import create_session

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        runner, _ = create_session(
            proto.SerializeToString(), use_kernels=kernels, sess_options=options, log_severity_level=3
        )
        for _ in range(1 + PROFILED_RUNS):
            runner.run(None, feeds)
        events = json.loads(Path(runner.end_profiling()).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    warm_end = runs[0][1] if runs else 0
    totals: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= warm_end:
            totals[event["args"]["op_name"]] += event["dur"]
    return totals


def eager_profile(model: torch.nn.Module, x: torch.Tensor) -> Counter[str]:
    """Microseconds of self CPU time per torch op over ``PROFILED_RUNS`` eager forwards (after one warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(PROFILED_RUNS):
                model(x)
    totals: Counter[str] = Counter()
    for event in prof.key_averages():
        totals[event.key] += event.self_cpu_time_total
    return totals


def breakdown(network: str, variant: str, totals: Counter[str], threads: int) -> Breakdown:
    total = sum(totals.values())
    ops = [(op, us / 1e3 / PROFILED_RUNS, us / total) for op, us in totals.most_common()]
    return Breakdown(network, variant, total / 1e3 / PROFILED_RUNS, ops, threads)


def load_1min() -> float:
    return os.getloadavg()[0]


def timed(
    result: Timing,
    figures: str,
    runs: dict[str, Callable[[], object]],
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """``runs`` timed as ``bench_ops.py`` does at batch 1, else alternated (a run takes seconds), into ``result``,
    the ratios of the kernels from them, and the load average around it."""
    before = load_1min()
    measured = interleaved_medians(runs, clock=clock) if result.batch == 1 else alternating_medians(runs, clock=clock)
    result.loads[figures] = (before, load_1min())
    result.timings_ms.update(measured)
    suffix = ONE_CORE if figures == "1-core" else ""
    t = result.timings_ms
    for ratio in TARGETS:
        numerator = ratio.split(" / ")[0]
        result.ratios[ratio + suffix] = t[numerator + suffix] / t["kernel" + suffix]


def variant_runs(
    model: torch.nn.Module, fallback, kernel, x: torch.Tensor, feeds: dict[str, np.ndarray], suffix: str = ""
) -> dict[str, Callable[[], object]]:
    def eager() -> object:
        with torch.no_grad():
            return model(x)

    return {
        "eager" + suffix: eager,
        "fallback" + suffix: lambda: fallback.run(None, feeds),
        "kernel" + suffix: lambda: kernel.run(None, feeds),
    }


def bench_network(
    name: str, threads: int, batches: list[int], size: int | None, profile: bool, one_core: bool
) -> tuple[list[Timing], list[Breakdown]]:
    from holocron.export import to_onnx_proto

    start = time.perf_counter()
    model, shape = build(name, size)
    example = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with_ops = to_onnx_proto(model, example, dynamic_batch=True, custom_ops=True)
    without_ops = to_onnx_proto(model, example, dynamic_batch=True, custom_ops=False)
    print(f"{name}: built, calibrated and exported in {time.perf_counter() - start:.0f} s", flush=True)
    kernel = session(with_ops, threads, kernels=True)
    fallback = session(without_ops, threads, kernels=False)
    if one_core:
        kernel_one = session(with_ops, 1, kernels=True)
        fallback_one = session(without_ops, 1, kernels=False)
    input_name = with_ops.graph.input[0].name

    timings: list[Timing] = []
    breakdowns: list[Breakdown] = []
    for batch in batches:
        x = torch.randn((batch, *shape[1:]), generator=torch.Generator().manual_seed(batch))
        feeds = {input_name: x.numpy()}
        result = Timing(name, batch, (batch, *shape[1:]))
        start = time.perf_counter()
        timed(result, "threads", variant_runs(model, fallback, kernel, x, feeds))
        if one_core:
            torch.set_num_threads(1)  # eager then runs its ops on the calling thread, whose CPU time is measured
            try:
                runs = variant_runs(model, fallback_one, kernel_one, x, feeds, ONE_CORE)
                timed(result, "1-core", runs, clock=time.thread_time)
            finally:
                torch.set_num_threads(threads)
        timings.append(result)
        print(f"{name}: batch {batch} timed in {time.perf_counter() - start:.0f} s", flush=True)
        if profile and batch == batches[0]:
            breakdowns += profiles(name, model, x, without_ops, with_ops, feeds, 1 if one_core else threads)
    return timings, breakdowns


def profiles(
    name: str,
    model: torch.nn.Module,
    x: torch.Tensor,
    without_ops: onnx.ModelProto,
    with_ops: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    threads: int,
) -> list[Breakdown]:
    """The eager, fallback and kernel breakdowns of one input, eager on ``threads`` torch threads as the sessions."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        eager = breakdown(name, "eager (torch.profiler)", eager_profile(model, x), threads)
    finally:
        torch.set_num_threads(previous)
    fallback = breakdown(name, "ORT fallback", ort_profile(without_ops, feeds, threads, False), threads)
    return [eager, fallback, breakdown(name, "ORT kernels", ort_profile(with_ops, feeds, threads, True), threads)]


def ceilings(timings: list[Timing], breakdowns: list[Breakdown]) -> dict[str, tuple[int, float]]:
    """Per profiled network, its first timed batch and that batch's ``ceiling``, from the figures taken on the
    profiles' threads (the one-core ones where the profiles ran on one thread); loaded figures are left out."""
    result: dict[str, tuple[int, float]] = {}
    for r in timings:
        found = {b.variant: b for b in breakdowns if b.network == r.network}
        if r.network in result or not {"eager (torch.profiler)", "ORT kernels"} <= set(found):
            continue
        one_core = found["ORT kernels"].threads == 1 and "1-core" in r.loads
        figures, suffix = ("1-core", ONE_CORE) if one_core else ("threads", "")
        if figures in r.loads and not r.loaded(figures):
            eager_ms, kernel_ms = r.timings_ms["eager" + suffix], r.timings_ms["kernel" + suffix]
            value = ceiling(eager_ms, kernel_ms, found["eager (torch.profiler)"], found["ORT kernels"])
            result[r.network] = (r.batch, value)
    return result


def format_figures(r: Timing, figures: str, width: int) -> str:
    """The three times and two ratios of one set of figures, or "no result" where the load exceeded ``MAX_LOAD``."""
    suffix = ONE_CORE if figures == "1-core" else ""
    if figures not in r.loads:
        return f"{'-':>{3 * (width + 1) + 2 * 21}}"
    if r.loaded(figures):
        before, after = r.loads[figures]
        return f"{f'no result (load {before:.1f} -> {after:.1f})':>{3 * (width + 1) + 2 * 21}}"
    times = " ".join(f"{r.timings_ms[c + suffix]:{width}.2f}" for c in VARIANTS)
    marks = "".join(
        f"{r.ratios[n + suffix]:19.2f}" + (" *" if r.batch == 1 and r.ratios[n + suffix] < TARGETS[n] else "  ")
        for n in TARGETS
    )
    return f"{times} {marks}"


def print_results(
    timings: list[Timing],
    breakdowns: list[Breakdown],
    threads: int,
    found_ceilings: dict[str, tuple[int, float]] | None,
) -> None:
    """The tables, the breakdowns and the ceilings (``None``: eager ran the pure-torch kernels, which have none)."""
    width = 10
    ratio_header = "".join(f"{n:>21}" for n in TARGETS)
    figures = [("threads", f"{threads} threads, wall time"), ("1-core", "1 core, thread CPU time")]
    for key, title in figures:
        if not any(key in r.loads for r in timings):
            continue
        print(f"\n{title}")
        print(f"{'network':18} {'input':18} " + " ".join(f"{c:>{width}}" for c in VARIANTS) + " " + ratio_header)
        for r in timings:
            print(f"{r.network:18} {r.input_shape!s:18} {format_figures(r, key, width)}")
    print(
        "(milliseconds; batch 1: per variant the lowest of 3 medians, batch 8: median of 3 runs, variants measured"
        " in turn; * = below issue 10's batch-1 target of "
        + ", ".join(f"{name} >= {value}x" for name, value in TARGETS.items())
        + f"; no result: one-minute load average above {MAX_LOAD:g} at the start or the end of those figures)"
    )
    for b in breakdowns:
        top = ", ".join(f"{op} {ms:.1f} ms ({share:.0%})" for op, ms, share in b.ops[:TOP_OPS])
        share = b.holocron_share()
        extra = f"; holocron {'nodes' if b.variant == 'ORT kernels' else 'ops'} {share:.0%}" if share else ""
        threads_word = "thread" if b.threads == 1 else "threads"
        print(f"{b.network} {b.variant}, {b.threads} {threads_word}: {b.total_ms:.1f} ms of ops per run{extra}: {top}")
    if found_ceilings is None:
        if breakdowns:
            print(
                "no ceiling of eager / kernel: on the pure-torch kernels the profile does not separate holocron's ops"
            )
        return
    for network, (batch, value) in found_ceilings.items():
        print(
            f"{network}: ceiling of eager / kernel {value:.2f}x at batch {batch} (were holocron's ops to take no time"
            " in eager and in the kernel session: the rest of each graph at its profiled share of the time)"
        )


def eager_kernels(native: bool) -> str:
    """Which kernels eager runs holocron's ops on (``native``: the torch op library is loaded), in words."""
    if native:
        return "native kernels (holocron's torch op library)"
    return "pure-torch kernels (HOLOCRON_PURE_TORCH=1, or no torch op library)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads (default 2)")
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--size", type=int, help="input side of the ResNet-26 networks (default 224)")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-op breakdowns")
    parser.add_argument("--no-one-core", action="store_true", help="skip the one-core (one-thread) figures")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start_load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{v:.2f}' for v in start_load)}", flush=True)
    native = holocron.ops.torch_library_loaded()
    print(f"eager: holocron's ops on their {eager_kernels(native)}", flush=True)

    timings: list[Timing] = []
    breakdowns: list[Breakdown] = []
    for name in args.networks:
        network_timings, network_breakdowns = bench_network(
            name, args.threads, args.batches, args.size, not args.no_profile, not args.no_one_core
        )
        timings += network_timings
        breakdowns += network_breakdowns
    end_load = os.getloadavg()
    loads = " at the start, ".join(", ".join(f"{v:.2f}" for v in load) for load in (start_load, end_load))
    print(f"threads: {args.threads}, onnxruntime CPU, float32, load average (1, 5, 15 min): {loads} at the end")
    # On the pure-torch kernels, holocron's ops are torch.library ops whose aten calls profile apart from them: their
    # share is not their time, and no ceiling is taken.
    found_ceilings = ceilings(timings, breakdowns) if native else None
    print_results(timings, breakdowns, args.threads, found_ceilings)
    if args.json:
        payload = {
            "threads": args.threads,
            "eager": eager_kernels(native),
            "load_average": {"start": start_load, "end": end_load},
            "max_load": MAX_LOAD,
            "timings": [asdict(t) for t in timings],
            "breakdowns": [asdict(b) for b in breakdowns],
            "ceilings": {name: {"batch": b, "eager / kernel": v} for name, (b, v) in (found_ceilings or {}).items()},
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
