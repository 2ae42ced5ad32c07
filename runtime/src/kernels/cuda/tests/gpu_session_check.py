"""The onnxruntime-gpu part of gpu_check.sh: holocron's CUDA kernels inside onnxruntime's CUDA execution provider.

Usage: ``python3 gpu_session_check.py FOLDER`` (the folder prepare_gpu_check.sh built: ``lib/libholocron_ort.so``
and ``models/``). Prints one line per step, ``PASS|FAIL|UNVERIFIED <step>: <detail>``, and exits 1 when a step
failed, else 0. Every step is UNVERIFIED when onnxruntime with the CUDA execution provider is not importable.
Standard library, numpy and onnxruntime only (the GPU machine has no project checkout).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STEPS = (
    "ort-session float32",
    "ort-session float16",
    "ort-profile CUDA nodes",
    "ort-iobinding device tensors",
    "ort-8-threads one session",
    "ort-enable_cuda_graph",
    "ort-sync-check",
    "timing add2d vs conv",
)
CUDA_EP = "CUDAExecutionProvider"
HOLOCRON_OPS = ("Add2d", "Involution2d", "Lambda")
failures = 0


def say(status: str, step: str, detail: str) -> None:
    global failures
    failures += status == "FAIL"
    print(f"{status} {step}: {detail}", flush=True)


def close(np: Any, got: Any, expected: Any) -> tuple[bool, float]:
    """CUDA output against the CPU kernels' output: float32 to 1e-4, float16 to 4e-3, relative to the output scale."""
    tol = 4e-3 if expected.dtype == np.float16 else 1e-4
    exp = expected.astype(np.float64)
    scale = max(1.0, float(np.abs(exp).max()))
    err = float(np.abs(got.astype(np.float64) - exp).max()) / scale
    return got.shape == expected.shape and bool(np.all(np.isfinite(got))) and err <= tol, err


def main(folder: Path) -> int:
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as error:
        for step in STEPS:
            say("UNVERIFIED", step, f"onnxruntime-gpu not importable ({error})")
        return 0
    if CUDA_EP not in ort.get_available_providers():
        for step in STEPS:
            say("UNVERIFIED", step, f"onnxruntime {ort.__version__} has no {CUDA_EP}")
        return 0
    library = str(folder / "lib" / "libholocron_ort.so")
    models = folder / "models"
    cases = sorted(path.stem for path in models.glob("*_float32.onnx"))

    def options(profile: Path | None = None) -> Any:
        so = ort.SessionOptions()
        so.register_custom_ops_library(library)
        so.log_severity_level = 2  # the library's driver note (a warning) shows here
        if profile is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(profile)
        return so

    def session(path: Path, profile: Path | None = None, cuda_options: dict[str, str] | None = None) -> Any:
        providers = [(CUDA_EP, cuda_options or {}), "CPUExecutionProvider"]
        return ort.InferenceSession(str(path), options(profile), providers=providers)

    def load(case: str) -> tuple[dict[str, Any], Any]:
        data = dict(np.load(models / f"{case}.npz"))
        return {k: v for k, v in data.items() if k != "expected"}, data["expected"]

    # Sessions per op and element type, with a profile saying where each holocron node ran.
    with tempfile.TemporaryDirectory() as tmp:
        placed: dict[str, set[str]] = {}
        for precision in ("float32", "float16"):
            bad, worst = [], 0.0
            for case in (c.replace("_float32", f"_{precision}") for c in cases):
                feeds, expected = load(case)
                sess = session(models / f"{case}.onnx", profile=Path(tmp) / case)
                (got,) = sess.run(None, feeds)
                ok, err = close(np, got, expected)
                worst = max(worst, err)
                if not ok:
                    bad.append(f"{case} (err {err:.2g})")
                events = json.loads(Path(sess.end_profiling()).read_text())
                placed[case] = {
                    e["args"].get("provider", "?")
                    for e in events
                    if e.get("cat") == "Node" and e.get("args", {}).get("op_name") in HOLOCRON_OPS
                }
            detail = f"{len(cases)} models, max err/scale {worst:.2g}"
            if bad:
                detail += f"; mismatched: {', '.join(bad)}"
            say("FAIL" if bad else "PASS", f"ort-session {precision}", detail + " (CUDA EP output = CPU kernels)")
        not_cuda = {case: sorted(p) for case, p in placed.items() if p != {CUDA_EP}}
        say(
            "FAIL" if not_cuda else "PASS",
            "ort-profile CUDA nodes",
            f"holocron nodes ran on another provider: {not_cuda}" if not_cuda else f"all {len(placed)} on {CUDA_EP}",
        )

    # IOBinding: inputs and output in device memory.
    bad = []
    for case in cases:
        feeds, expected = load(case)
        sess = session(models / f"{case}.onnx")
        binding = sess.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
        binding.bind_output("Y", "cuda", 0)
        sess.run_with_iobinding(binding)
        out = binding.get_outputs()[0]
        if out.device_name().lower() != "cuda":
            bad.append(f"{case}: output on {out.device_name()}")
            continue
        ok, err = close(np, out.numpy(), expected)
        if not ok:
            bad.append(f"{case} (err {err:.2g})")
    say("FAIL" if bad else "PASS", "ort-iobinding device tensors", "; ".join(bad) or f"{len(cases)} models")

    # 8 threads running one session concurrently, each several times.
    bad = []
    for case in cases:
        feeds, expected = load(case)
        sess = session(models / f"{case}.onnx")
        errors: list[str] = []

        def worker(
            sess: Any = sess, feeds: dict[str, Any] = feeds, expected: Any = expected, errors: list[str] = errors
        ) -> None:
            for _ in range(5):
                (got,) = sess.run(None, feeds)
                ok, err = close(np, got, expected)
                if not ok:
                    errors.append(f"err {err:.2g}")

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            bad.append(f"{case}: {len(errors)} of 40 runs wrong")
    say("FAIL" if bad else "PASS", "ort-8-threads one session", "; ".join(bad) or f"{len(cases)} models x 40 runs")

    # enable_cuda_graph: captured on the first run, replayed after; inputs must stay at the bound device addresses.
    bad = []
    for case in cases:
        feeds, expected = load(case)
        try:
            sess = session(models / f"{case}.onnx", cuda_options={"enable_cuda_graph": "1"})
            binding = sess.io_binding()
            values = {n: ort.OrtValue.ortvalue_from_numpy(v, "cuda", 0) for n, v in feeds.items()}
            for name, value in values.items():
                binding.bind_ortvalue_input(name, value)
            out = ort.OrtValue.ortvalue_from_shape_and_type(expected.shape, expected.dtype, "cuda", 0)
            binding.bind_ortvalue_output("Y", out)
            for _ in range(3):
                sess.run_with_iobinding(binding)
            ok, err = close(np, out.numpy(), expected)
            if not ok:
                bad.append(f"{case} (err {err:.2g})")
        except Exception as error:  # a capture failure is the finding
            bad.append(f"{case}: {type(error).__name__}: {str(error)[:200]}")
    say("FAIL" if bad else "PASS", "ort-enable_cuda_graph", "; ".join(bad) or f"{len(cases)} models, 3 runs each")

    # HOLOCRON_CUDA_SYNC_CHECK=1 (read once per process): the same sessions in a child process.
    child = subprocess.run(
        [sys.executable, __file__, str(folder), "--sync-child"],
        env={**os.environ, "HOLOCRON_CUDA_SYNC_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    say(
        "PASS" if child.returncode == 0 else "FAIL",
        "ort-sync-check",
        "all models equal with HOLOCRON_CUDA_SYNC_CHECK=1" if child.returncode == 0 else child.stdout[-300:],
    )

    try:
        timing(np, ort, models, session)
    except Exception as error:
        say("FAIL", "timing add2d vs conv", f"{type(error).__name__}: {str(error)[:200]}")
    return 1 if failures else 0


def sync_child(folder: Path) -> int:
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.register_custom_ops_library(str(folder / "lib" / "libholocron_ort.so"))
    bad = []
    for path in sorted((folder / "models").glob("*_float*.onnx")):
        data = dict(np.load(path.with_suffix(".npz")))
        expected = data.pop("expected")
        sess = ort.InferenceSession(str(path), so, providers=[CUDA_EP, "CPUExecutionProvider"])
        (got,) = sess.run(None, data)
        if not close(np, got, expected)[0]:
            bad.append(path.stem)
    print("mismatched:", bad)
    return 1 if bad else 0


def median_ms(run: Any, repeats: int = 50) -> float:
    for _ in range(5):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return sorted(samples)[len(samples) // 2]


def timing(np: Any, ort: Any, models: Path, session: Any) -> None:
    """Add2d against cuDNN convolution of the same shape, TF32 off and on (onnxruntime's use_tf32; torch if there)."""
    rng = np.random.default_rng(0)
    feeds = {
        "X": rng.standard_normal((1, 64, 56, 56), np.float32),
        "W": rng.standard_normal((64, 64, 3, 3), np.float32),
    }
    results = []
    for name, tf32 in (("add2d", "0"), ("conv tf32=0", "0"), ("conv tf32=1", "1")):
        path = models / ("timing_add2d.onnx" if name == "add2d" else "timing_conv.onnx")
        sess = session(path, cuda_options={"use_tf32": tf32, "cudnn_conv_algo_search": "EXHAUSTIVE"})
        binding = sess.io_binding()
        for n, v in feeds.items():
            binding.bind_ortvalue_input(n, ort.OrtValue.ortvalue_from_numpy(v, "cuda", 0))
        binding.bind_output("Y", "cuda", 0)

        def run(sess: Any = sess, binding: Any = binding) -> None:
            sess.run_with_iobinding(binding)
            binding.synchronize_outputs()

        results.append(f"{name} {median_ms(run):.3f} ms")
    try:
        import torch

        if torch.cuda.is_available():
            x = torch.from_numpy(feeds["X"]).cuda()
            w = torch.from_numpy(feeds["W"]).cuda()
            for tf32 in (False, True):
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cudnn.benchmark = True

                def conv(x: Any = x, w: Any = w) -> None:
                    torch.nn.functional.conv2d(x, w, padding=1)
                    torch.cuda.synchronize()

                results.append(f"torch conv tf32={int(tf32)} {median_ms(conv):.3f} ms")
    except ImportError:
        results.append("torch not importable")
    say("PASS", "timing add2d vs conv", "(1,64,56,56)->64 k3 p1, median of 50 with IOBinding: " + "; ".join(results))


if __name__ == "__main__":
    target = Path(sys.argv[1]).resolve()
    sys.exit(sync_child(target) if sys.argv[2:3] == ["--sync-child"] else main(target))
