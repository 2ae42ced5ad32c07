"""Speed of the exported demo model (``make demo``): eager PyTorch vs onnxruntime with holocron's kernels vs the
standard-ONNX fallback.

Loads the ONNX file ``holocron-export --demo`` wrote, rebuilds the same demo model eagerly, checks that the three
agree on one seeded input, and prints the median time of each (2 threads everywhere; per variant the lowest of three
medians, the variants measured in turn so that load from other processes skews no ratio) and the kernels' speed-up.

Usage: ``python benchmarks/demo_speed.py build/demo.onnx [--threads 2]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from _models import session
from _timing import interleaved_medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the ONNX file written by holocron-export --demo")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from holocron.export import DEMO_INPUT_SHAPE, build_demo_model

    model = build_demo_model()
    proto = onnx.load(args.model)
    x = torch.randn(DEMO_INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    feeds = {proto.graph.input[0].name: x.numpy()}
    kernel = session(proto, args.threads, kernels=True)
    fallback = session(proto, args.threads, kernels=False)  # the same file: its fallback functions inlined

    with torch.no_grad():
        expected = model(x).numpy()
    for name, runner in (("kernels", kernel), ("fallback", fallback)):
        got = runner.run(None, feeds)[0]
        if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
            print(f"onnxruntime ({name}) differs from eager: max abs error {np.abs(got - expected).max():.3g}")
            return 1

    def eager() -> object:
        with torch.no_grad():
            return model(x)

    t = interleaved_medians(
        {
            "eager": eager,
            "onnxruntime + kernels": lambda: kernel.run(None, feeds),
            "onnxruntime fallback": lambda: fallback.run(None, feeds),
        }
    )
    kernels = t["onnxruntime + kernels"]
    print(f"demo model {tuple(DEMO_INPUT_SHAPE)}, {args.threads} threads, float32, median ms:")
    for name, ms in t.items():
        print(f"  {name:24} {ms:9.3f} ms   {ms / kernels:5.2f}x the kernels' time")
    print(
        f"speed-up of the kernels: {t['eager'] / kernels:.1f}x vs eager PyTorch, "
        f"{t['onnxruntime fallback'] / kernels:.1f}x vs the standard-ONNX fallback"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
