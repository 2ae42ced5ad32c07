"""What ``--localize`` costs: CPU time of a localized verification over a plain one, on LambdaResNet-26.

Localization records every module's output in the eager runs the verdict needs anyway (float32 and the float64
reference) and adds one onnxruntime run of a copy of the model with the module values as outputs; for a TorchScript
MODEL it also builds an inlined, instrumented copy of the graph once. The network is the largest reference one at its
narrow width and test input (4x3x64x64), loaded from a TorchScript archive as ``holocron-verify`` has it. After one
untimed verification of each kind, the two kinds alternate ``--rounds`` times; the figures are medians of the
process's CPU time (other processes on the machine do not count), printed with the wall times and the load average.

Usage: ``python benchmarks/bench_localize.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import warnings

import torch

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import to_onnx_proto
from holocron.export.parity.api import verify

NAME = "lambda_resnet26"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed verifications of each kind (default 5)")
    args = parser.parse_args(argv)
    spec = NETWORKS[NAME]
    model = calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)
    archive = io.BytesIO()
    torch.jit.save(torch.jit.script(model), archive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = to_onnx_proto(model, (torch.zeros(spec.test_input_shape),), exporter="torchscript", dynamic_batch=True)
    shape = [spec.test_input_shape]

    def run(localize: bool) -> tuple[float, float]:
        archive.seek(0)
        loaded = torch.jit.load(archive)
        cpu, wall = time.process_time(), time.perf_counter()
        report = verify(loaded, proto, shape, localize=localize)
        assert report.passed
        return time.process_time() - cpu, time.perf_counter() - wall

    run(False), run(True)
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for localize in (False, True):
            times[localize].append(run(localize))
    cpu = {kind: statistics.median(t[0] for t in runs) for kind, runs in times.items()}
    wall = {kind: statistics.median(t[1] for t in runs) for kind, runs in times.items()}
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{NAME} (narrow, {'x'.join(map(str, spec.test_input_shape))}), TorchScript MODEL, load average {load}")
    print(f"plain verify:     CPU {cpu[False]:.3f} s, wall {wall[False]:.3f} s")
    print(f"localized verify: CPU {cpu[True]:.3f} s, wall {wall[True]:.3f} s")
    print(f"localized / plain: CPU {cpu[True] / cpu[False]:.2f}, wall {wall[True] / wall[False]:.2f}")


if __name__ == "__main__":
    main()
