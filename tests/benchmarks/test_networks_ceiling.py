"""bench_networks.py's ceiling of eager / kernel: the measured times less the profiled shares of holocron's ops, from
the figures taken on the profiles' threads, never from loaded figures."""

import pytest


def profiles(bench_networks, threads: int = 1) -> list:
    b = bench_networks
    eager = b.Breakdown(
        "net", "eager (torch.profiler)", 10.0, [("aten::conv", 6.0, 0.6), ("holocron::lambda_layer", 4.0, 0.4)], threads
    )
    kernel = b.Breakdown(
        "net", "ORT kernels", 5.0, [("Conv", 3.0, 0.6), ("Lambda", 1.5, 0.3), ("Relu", 0.5, 0.1)], threads
    )
    return [eager, kernel]


def timing(bench_networks, loads: dict):
    b = bench_networks
    r = b.Timing("net", 1, (1, 3, 8, 8), loads=loads)
    r.timings_ms.update({"eager": 20.0, "kernel": 10.0, "eager" + b.ONE_CORE: 30.0, "kernel" + b.ONE_CORE: 8.0})
    return r


def test_ceiling_removes_holocron_ops_from_both_times(bench_networks) -> None:
    eager, kernel = profiles(bench_networks)
    assert eager.holocron_share() == pytest.approx(0.4)
    assert kernel.holocron_share() == pytest.approx(0.3)
    # 30 ms eager of which 60% is not holocron's, 8 ms kernel of which 70% is not: 18 / 5.6.
    assert bench_networks.ceiling(30.0, 8.0, eager, kernel) == pytest.approx(18.0 / 5.6)


def test_pure_torch_eager_has_no_holocron_share(bench_networks) -> None:
    b = bench_networks
    pure = b.Breakdown("net", "eager (torch.profiler)", 10.0, [("aten::conv", 7.0, 0.7), ("aten::einsum", 3.0, 0.3)])
    assert pure.holocron_share() == 0.0


def test_ceilings_take_the_one_core_figures_of_one_thread_profiles(bench_networks) -> None:
    r = timing(bench_networks, {"threads": (1.0, 1.0), "1-core": (1.0, 1.0)})
    ceilings = bench_networks.ceilings([r], profiles(bench_networks, threads=1))
    assert ceilings == {"net": (1, pytest.approx(30.0 * 0.6 / (8.0 * 0.7)))}
    two = bench_networks.ceilings([r], profiles(bench_networks, threads=2))
    assert two == {"net": (1, pytest.approx(20.0 * 0.6 / (10.0 * 0.7)))}


def test_ceilings_leave_loaded_figures_out(bench_networks) -> None:
    r = timing(bench_networks, {"threads": (1.0, 1.0), "1-core": (1.0, 3.5)})
    assert bench_networks.ceilings([r], profiles(bench_networks)) == {}
