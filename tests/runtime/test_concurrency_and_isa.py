"""Concurrent runs of one session, and every instruction-set variant of the kernels."""

import threading

import numpy as np
import pytest
from helpers import single_node_model

SHAPES = {
    "Add2d": (
        {"X": (2, 16, 13, 17), "W": (12, 8, 3, 3), "B": (12,)},
        {"pads": [1, 1, 1, 1], "strides": [1, 2], "group": 2, "normalize_slices": 1},
    ),
    "Involution2d": (
        {"X": (2, 12, 15, 11), "K": (2, 3 * 25, 15, 11)},
        {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2], "group": 3},
    ),
    "Lambda": ({"Q": (2, 12, 9, 7), "Kx": (2, 8, 9, 7), "V": (2, 10, 9, 7), "P": (4, 2, 1, 5, 5)}, {"num_heads": 3}),
    "LambdaGlobal": (
        {"Q": (1, 12, 6, 7), "Kx": (1, 4, 6, 7), "V": (1, 10, 6, 7), "P": (42, 42, 4, 1)},
        {"num_heads": 3},
    ),
    # Rows 29 and 27 wide: AVX-512 runs one 16-lane vector, then an 8-lane one, then a partial one.
    "Involution2d-wide": (
        {"X": (1, 8, 7, 29), "K": (1, 2 * 9, 7, 29)},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": 2},
    ),
    "Lambda-wide": (
        {"Q": (1, 8, 5, 27), "Kx": (1, 8, 5, 27), "V": (1, 6, 5, 27), "P": (4, 2, 1, 5, 5)},
        {"num_heads": 2},
    ),
}


def op_of(name: str) -> str:
    return "Lambda" if name.startswith("Lambda") else name.split("-")[0]


def inputs_of(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.mark.parametrize("name", list(SHAPES))
def test_two_threads_running_one_session_get_identical_results(library, name: str) -> None:
    import onnxruntime as ort

    shapes, attributes = SHAPES[name]
    op = op_of(name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.register_custom_ops_library(str(library))
    feeds = inputs_of(shapes)
    session = ort.InferenceSession(single_node_model(op, feeds, attributes).SerializeToString(), options)
    (reference,) = session.run(None, feeds)
    results: list[list[np.ndarray]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(slot: int) -> None:
        barrier.wait()
        for _ in range(10):
            results[slot].append(session.run(None, feeds)[0])

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results[0]) == len(results[1]) == 10
    for out in results[0] + results[1]:
        np.testing.assert_array_equal(out, reference)


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_instruction_set_variants_agree(run_kernel, run_in_subprocess, isa: str, name: str) -> None:
    """HOLOCRON_CPU_ISA caps the vector width the kernels pick; each variant matches the widest one of this CPU."""
    shapes, attributes = SHAPES[name]
    op = op_of(name)
    feeds = inputs_of(shapes, seed=1)
    widest = run_kernel(op, feeds, attributes)
    result = run_in_subprocess(single_node_model(op, feeds, attributes), feeds, env={"HOLOCRON_CPU_ISA": isa})
    assert result.returncode == 0, result.stdout + result.stderr
    capped = np.load(result.args[-1])["Y"]
    np.testing.assert_allclose(capped, widest, rtol=1e-5, atol=1e-5)


def test_misspelled_instruction_set_cap_is_refused(run_in_subprocess) -> None:
    """The cap is read: a name that is no instruction set fails registration instead of being ignored."""
    shapes, attributes = SHAPES["Add2d"]
    feeds = inputs_of(shapes)
    result = run_in_subprocess(single_node_model("Add2d", feeds, attributes), feeds, env={"HOLOCRON_CPU_ISA": "avx3"})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "HOLOCRON_CPU_ISA" in result.stdout
