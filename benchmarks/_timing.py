"""Timing and memory measurements shared by the benchmarks."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import numpy as np

__all__ = ["copy_bandwidth", "median_ms"]


def median_ms(run: Callable[[], object], min_runs: int = 15, max_runs: int = 200, budget_s: float = 1.5) -> float:
    """Median wall time of ``run()`` in milliseconds, after warm-up; as many runs as fit ``budget_s`` within
    [``min_runs``, ``max_runs``]."""
    for _ in range(3):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < budget_s):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return 1e3 * statistics.median(times)


def copy_bandwidth(nbytes: int, threads: int) -> float:
    """Bytes per second moved (read + written) by copying an ``nbytes`` float32 buffer with ``threads`` threads.

    Returns the best of the single-thread and the ``threads``-thread copy: the machine's copy bandwidth at that
    working-set size.
    """
    count = max(nbytes // 4, threads * 1024)
    source = np.random.default_rng(0).standard_normal(count).astype(np.float32)
    target = np.empty_like(source)
    parts = np.array_split(np.arange(count), threads)

    def copy_parallel() -> None:
        workers = [
            threading.Thread(target=np.copyto, args=(target[p[0] : p[-1] + 1], source[p[0] : p[-1] + 1])) for p in parts
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    serial = median_ms(lambda: np.copyto(target, source))
    parallel = median_ms(copy_parallel)
    return 2 * source.nbytes / (1e-3 * min(serial, parallel))
