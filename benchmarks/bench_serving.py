"""Serving benchmark: one onnxruntime session, many concurrent clients, holocron kernels vs the standard-ONNX fallback.

A real network (default: RedNet-26 at a narrow width) is exported once. For each execution path (``kernels``: the
session has holocron's op library registered; ``fallback``: a plain session that inlines the fallback functions) and
for 1, 4 and 16 client threads, the clients share that one session and send single-sample requests for a bounded
time. Every response is compared with the single-threaded result for the same input, so a race in a kernel shows up
as a mismatch count, not as a fast number.

Prints a progress bar on stderr, then a table (throughput, p50 and p99 latency, mismatches), and writes the figures
as JSON. Run: ``python benchmarks/bench_serving.py [--network rednet26] [--seconds 3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from holocron import runtime
from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import to_onnx

CLIENTS = (1, 4, 16)
DISTINCT_INPUTS = 8


@dataclass
class ServingResult:
    path: str
    clients: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    mismatches: int


class Progress:
    """A one-line progress bar on stderr (redrawn in place; plain lines when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] {self.done}/{self.total} {label}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        if self.tty and self.done == self.total:
            print(file=sys.stderr)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _serve(
    session: ort.InferenceSession, inputs: list[np.ndarray], expected: list[np.ndarray], clients: int, seconds: float
) -> tuple[int, float, list[float], int]:
    name = session.get_inputs()[0].name
    latencies: list[list[float]] = [[] for _ in range(clients)]
    mismatches = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    deadline: list[float] = [0.0]

    def client(index: int) -> None:
        start_barrier.wait()
        request = index
        while time.perf_counter() < deadline[0]:
            which = request % len(inputs)
            begin = time.perf_counter()
            (out,) = session.run(None, {name: inputs[which]})
            latencies[index].append(time.perf_counter() - begin)
            if not np.array_equal(out, expected[which]):
                mismatches[index] += 1
            request += clients

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_barrier.wait()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - began
    flat = [value for per_client in latencies for value in per_client]
    return len(flat), elapsed, flat, sum(mismatches)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=sorted(NETWORKS), default="rednet26", help="network to serve")
    parser.add_argument("--full-width", action="store_true", help="the paper's width instead of the narrow variant")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per (path, clients) run (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--json", type=Path, default=Path("build/bench_serving.json"), help="where to write JSON")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600]")

    spec = NETWORKS[args.network]
    model = spec.builder(**({} if args.full_width else spec.narrow_kwargs))
    calibration_shape = spec.full_input_shape if args.full_width else spec.test_input_shape
    calibrate_batchnorm(model, calibration_shape)
    shape = (1, *calibration_shape[1:])

    generator = torch.Generator().manual_seed(1)
    samples = [torch.randn(shape, generator=generator) for _ in range(DISTINCT_INPUTS)]
    with tempfile.TemporaryDirectory() as tmp:
        path = to_onnx(model, (samples[0],), Path(tmp) / "model.onnx", dynamic_batch=True)
        sessions = {}
        for label, use_kernels in (("kernels", True), ("fallback", False)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            sessions[label], _ = runtime.create_session(path, use_kernels=use_kernels, sess_options=options)
        inputs = [sample.numpy() for sample in samples]
        progress = Progress(len(sessions) * len(CLIENTS))
        results: list[ServingResult] = []
        for label, session in sessions.items():
            name = session.get_inputs()[0].name
            expected = [session.run(None, {name: x})[0] for x in inputs]  # the single-threaded answers
            for clients in CLIENTS:
                count, elapsed, latencies, mismatches = _serve(session, inputs, expected, clients, args.seconds)
                results.append(
                    ServingResult(
                        path=label,
                        clients=clients,
                        requests=count,
                        seconds=round(elapsed, 3),
                        throughput=count / elapsed,
                        p50_ms=1e3 * statistics.median(latencies),
                        p99_ms=1e3 * _percentile(latencies, 0.99),
                        mismatches=mismatches,
                    )
                )
                progress.step(f"{label}, {clients} clients")

    machine = f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime {ort.__version__}, {args.threads} threads"
    print(f"\n{args.network} ({'full' if args.full_width else 'narrow'} width), input {shape}; {machine}")
    print("| path | clients | requests/s | p50 ms | p99 ms | mismatches |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r.path} | {r.clients} | {r.throughput:.1f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.mismatches} |")
    by_key = {(r.path, r.clients): r for r in results}
    for clients in CLIENTS:
        ratio = by_key["kernels", clients].throughput / by_key["fallback", clients].throughput
        print(f"kernels / fallback throughput at {clients} clients: {ratio:.2f}x")
    report = {
        "network": args.network,
        "full_width": args.full_width,
        "input_shape": list(shape),
        "machine": machine,
        "seconds_per_run": args.seconds,
        "results": [asdict(r) for r in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = args.json.with_name(f".{args.json.name}.tmp")
    tmp_json.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp_json, args.json)
    print(f"JSON: {args.json}")
    return 1 if any(r.mismatches for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
