"""Replacing a Triton model never loses a version: concurrent ``--force`` writers (processes, and a CLI run), and a
writer killed at each step of its swap, leave every version that was there before (holocron.export.files' folder
swap, used by holocron.export.triton.write_repository)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import onnx
import pytest
import torch
from helpers import run_cli
from onnx import TensorProto, helper

from holocron.export.errors import OutputPathError
from holocron.export.pipeline import ExportRequest, prepare_export
from holocron.export.triton import TritonOptions, write_repository
from holocron.export.triton.repository import check_repository_slot

NAME = "m"


def _model(scale: float) -> onnx.ModelProto:
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["y"])],
        "g",
        [value("x", TensorProto.FLOAT, [1, 2])],
        [value("y", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _seed_repository(repo: Path, versions: tuple[int, ...] = (1, 2)) -> None:
    for version in versions:
        write_repository(_model(version), repo, TritonOptions(NAME, version), library=None, overwrite=True)


def _versions(repo: Path) -> set[int]:
    slot = repo / NAME
    return {int(p.name) for p in slot.iterdir() if p.name.isdigit() and (p / "model.onnx").is_file()}


def _writer(repo: str, version: int, barrier, times: int = 1) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    for _ in range(times):
        write_repository(_model(version), repo, TritonOptions(NAME, version), library=None, overwrite=True)


def test_two_concurrent_force_writers_keep_every_version(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for trial in range(3):
        repo = tmp_path / f"repo{trial}"
        _seed_repository(repo)
        barrier = context.Barrier(2)
        writers = [context.Process(target=_writer, args=(str(repo), v, barrier, 6)) for v in (3, 4)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(120)
        assert _versions(repo) == {1, 2, 3, 4}, f"trial {trial}"
        assert [writer.exitcode for writer in writers] == [0, 0]
        assert not [p for p in repo.iterdir() if p.name.startswith(f".{NAME}.") and p.is_dir()]


def test_a_cli_writer_and_a_concurrent_writer_keep_every_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _seed_repository(repo)
    model = tmp_path / "relu.pt"
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), str(model))
    context = multiprocessing.get_context("fork")
    cli = subprocess.Popen(
        [sys.executable, "-m", "holocron.export.cli.export", str(model), "--input-shape", "1,2", "--format", "triton",
         "-o", str(repo), "--model-name", NAME, "--model-version", "5", "--force", "--no-verify"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    writes = 0
    while cli.poll() is None:  # replace the model over and over while the CLI runs, so their swaps meet
        writer = context.Process(target=_writer, args=(str(repo), 3 + writes % 2, context.Barrier(1)))
        writer.start()
        writer.join(60)
        assert writer.exitcode == 0
        writes += 1
    _, stderr = cli.communicate(timeout=300)
    assert cli.returncode == 0, stderr
    assert writes >= 1
    assert _versions(repo) == {1, 2, 5} | {3 + i % 2 for i in range(writes)}


_KILLED_WRITER = textwrap.dedent(
    """
    import os, shutil, sys
    import onnx
    from onnx import TensorProto, helper
    from holocron.export.triton import TritonOptions, write_repository

    repo, step = sys.argv[1], int(sys.argv[2])
    calls = [0]

    def dies_at_step(original):
        def wrapper(*args, **kwargs):
            calls[0] += 1
            if calls[0] == step:
                os._exit(9)  # killed: no cleanup, no finally
            return original(*args, **kwargs)
        return wrapper

    os.rename = dies_at_step(os.rename)
    os.link = dies_at_step(os.link)
    shutil.rmtree = dies_at_step(shutil.rmtree)
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [value("x", TensorProto.FLOAT, [1, 2])], [value("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    write_repository(model, repo, TritonOptions("m", 3), library=None, overwrite=True)
    """
)


def test_a_writer_killed_at_any_step_loses_no_version(tmp_path: Path) -> None:
    script = tmp_path / "killed_writer.py"
    script.write_text(_KILLED_WRITER)
    step, completed = 1, False
    while not completed:
        assert step < 20, "the writer never completed"
        repo = tmp_path / f"repo{step}"
        _seed_repository(repo, (1, 2, 3))
        result = subprocess.run([sys.executable, str(script), str(repo), str(step)], capture_output=True, text=True)
        completed = result.returncode == 0
        if not completed:
            assert result.returncode == 9, result.stderr
        # Whatever the writer left, the next writer of the model recovers it and loses nothing.
        write_repository(_model(4), repo, TritonOptions(NAME, 4), library=None, overwrite=True)
        assert _versions(repo) == {1, 2, 3, 4}, f"killed at step {step}"
        leftovers = [p.name for p in repo.iterdir() if p.name.startswith(f".{NAME}.") and p.is_dir()]
        assert leftovers == [], f"killed at step {step}: {leftovers}"
        step += 1
    assert step > 3  # the swap has several steps, and each was killed once


def test_a_leftover_the_writer_cannot_account_for_is_named(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _seed_repository(repo)
    stray = repo / f".{NAME}.abcd1234.old"
    (stray / "7").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"abcd1234\.old.*7"):
        write_repository(_model(3), repo, TritonOptions(NAME, 3), library=None, overwrite=True)
    assert (stray / "7").is_dir() and _versions(repo) == {1, 2}


def _plan(repo: Path, name: str = NAME, report: Path | None = None):  # type: ignore[no-untyped-def]
    request = ExportRequest(
        demo=True, output_format="triton", output=repo, triton=TritonOptions(name), report_path=report, force=True
    )
    return prepare_export(request)


def test_a_report_inside_the_model_slot_is_refused_before_any_work(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _seed_repository(repo)
    for report in (repo / NAME / "report.json", repo / NAME / "1" / "r.json"):
        with pytest.raises(OutputPathError, match="inside the model folder"):
            _plan(repo, report=report)
    assert _plan(repo, report=repo / "report.json").output == repo  # beside the model is fine


def test_cli_report_on_the_config_exits_2_before_any_work(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _seed_repository(repo)
    report = repo / NAME / "config.pbtxt"
    before = {p: p.read_bytes() for p in (repo / NAME).rglob("*") if p.is_file()}
    result = run_cli("--demo", "--format", "triton", "-o", repo, "--model-name", NAME, "--force", "--report", report,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--report" in result.stderr and "inside the model folder" in result.stderr
    assert {p: p.read_bytes() for p in (repo / NAME).rglob("*") if p.is_file()} == before


def test_long_model_name_and_dangling_repository_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="255 bytes"):
        _plan(tmp_path / "repo", name="a" * 300)
    _plan(tmp_path / "repo", name="a" * 241)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing")
    with pytest.raises(OutputPathError, match="symlink to a missing path"):
        _plan(dangling)
    result = run_cli("--demo", "--format", "triton", "-o", dangling, "--model-name", "a" * 300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "255 bytes" in result.stderr or "symlink to a missing path" in result.stderr
    assert not (tmp_path / "missing").exists() and not (tmp_path / "repo").exists()
    assert os.path.islink(dangling)


def test_the_slot_check_reads_a_folder_being_swapped_as_one_moment(tmp_path: Path) -> None:
    """Another writer's swap leaves the slot missing between its two renames; the check before the lock must see
    either a folder or nothing, never 'exists' then 'not a folder' (a race CI once hit with two --force writers)."""
    repo = tmp_path / "repo"
    _seed_repository(repo)
    slot, aside = repo / NAME, repo / f".{NAME}.swap.old"
    stop = threading.Event()

    def swapper() -> None:
        while not stop.is_set():
            os.rename(slot, aside)
            os.rename(aside, slot)

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        for _ in range(20000):
            check_repository_slot(repo, NAME, overwrite=True)
    finally:
        stop.set()
        thread.join()
