"""Timing and memory measurements shared by the benchmarks."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import numpy as np

__all__ = ["alternating_medians", "copy_bandwidth", "interleaved_medians", "median_ms"]


def median_ms(
    run: Callable[[], object],
    min_runs: int = 15,
    max_runs: int = 200,
    budget_s: float = 0.5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median time of ``run()`` on ``clock`` in milliseconds, after warm-up.

    Runs at least ``min_runs`` times and for at least ``budget_s`` of wall time (at most ``max_runs`` times), but a
    slow ``run`` stops after 5 runs once it has used 4 budgets. ``clock`` is wall time by default;
    ``time.thread_time`` gives the calling thread's CPU time, which other processes on the machine do not inflate
    (for a one-thread onnxruntime session, which runs its nodes on the calling thread).
    """
    for _ in range(2):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs:
        elapsed = time.perf_counter() - start
        if (len(times) >= min_runs and elapsed >= budget_s) or (len(times) >= 5 and elapsed >= 4 * budget_s):
            break
        begin = clock()
        run()
        times.append(clock() - begin)
    return 1e3 * statistics.median(times)


def interleaved_medians(
    runs: dict[str, Callable[[], object]], rounds: int = 3, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Per variant, the lowest of ``rounds`` medians (on ``clock``, see :func:`median_ms`), the variants in turn.

    On a machine shared with other work, a burst of load then slows one round of every variant instead of all of
    one variant, and the ratios between variants stay meaningful.
    """
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best.get(name, float("inf")), median_ms(run, clock=clock))
    return best


def alternating_medians(
    runs: dict[str, Callable[[], object]],
    repeats: int = 3,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Per variant, the median of ``repeats`` single runs in milliseconds (on ``clock``, see :func:`median_ms`), one
    run of each variant in turn.

    For runs of seconds, where :func:`interleaved_medians` would take minutes: a burst of load from other processes
    then hits one run of each variant rather than one variant. Each variant first runs ``warmup`` times.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            begin = clock()
            run()
            times[name].append(clock() - begin)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


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
