"""Peak memory of one onnxruntime session, measured in a fresh process (``python _peak_memory.py MODEL FEEDS KIND``).

Prints how far the process's peak resident set (bytes) rose above its resident set just before the session was
created, once the session ran three times. KIND is ``kernel`` (holocron's library registered) or ``fallback``.
Linux only: the peak (VmHWM) is reset through /proc/self/clear_refs and read from /proc/self/status.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from _models import session


def status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def main(model_path: str, feeds_path: str, kind: str) -> None:
    feeds = dict(np.load(feeds_path))
    model = onnx.load(model_path)
    import onnxruntime  # noqa: F401  (its import-time memory is not the session's)

    Path("/proc/self/clear_refs").write_text("5")  # peak resident set := current resident set
    before = status_bytes("VmRSS")
    runner = session(model, threads=2, kernels=kind == "kernel")
    for _ in range(3):
        runner.run(None, feeds)
    print(status_bytes("VmHWM") - before)


if __name__ == "__main__":
    main(*sys.argv[1:4])
