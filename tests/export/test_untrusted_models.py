"""Untrusted model files run nothing: the archive check (holocron.export.model.archives), the forced weights-only
loads, and the graph allow-list (holocron.export.model.graphs), each against files crafted to run code, plus a
hypothesis test over hostile archives that asserts no marker file is ever created and memory stays bounded."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from holocron.export import ModelLoadError, load_model
from holocron.export.errors import UnsafePickleError
from holocron.export.model.archives import MAX_MEMBER_BYTES, ArchiveCheckError, check_archive, weights_only_loads
from holocron.export.model.graphs import UnsafeGraphError, check_exported_program, check_script_module

SHAPE = (2, 3)


class _CreatesFile:
    """Pickles as a call to ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (builtins.open, (self.marker, "w"))


class _Double(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


class _MapsFile(nn.Module):
    """Its forward maps (creating) a file: ``aten::from_file(..., shared=True)``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mapped = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
        return x + mapped.sum().to(x.dtype)


class _TouchesOnLoad(nn.Module):
    """Its ``__setstate__`` maps (creating) a file: it runs during ``torch.jit.load``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        self.training = state[1]
        torch.from_file(self.path, shared=True, size=1, dtype=torch.uint8)


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("genuine")
    paths = {"pt2": folder / "static.pt2", "dynamic": folder / "dynamic.pt2", "ts": folder / "model.pt"}
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU()).eval()
    torch.export.save(torch.export.export(model, (torch.randn(SHAPE),)), paths["pt2"])
    batch = torch.export.Dim("batch")
    torch.export.save(
        torch.export.export(_Double(), (torch.randn(SHAPE),), dynamic_shapes=({0: batch},)), paths["dynamic"]
    )
    torch.jit.save(torch.jit.script(model), str(paths["ts"]))
    return paths


def _rewrite(source: Path, target: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """``source`` with each member's bytes passed through ``edit(name, data)`` (None drops the member)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as crafted:
        for info in original.infolist():
            data = edit(info.filename, original.read(info))
            if data is not None:
                crafted.writestr(info, data)
    return target


def test_genuine_archives_pass_and_load(genuine) -> None:
    for name, kind in (("pt2", "torch_export"), ("dynamic", "torch_export"), ("ts", "torchscript")):
        check_archive(genuine[name], kind)
        assert load_model(genuine[name]).kind == kind


def test_protocol_0_pickle_in_a_pt2_runs_nothing(genuine, tmp_path) -> None:
    """The old check skipped members neither named *.pkl nor starting with 0x80; torch.load read them anyway."""
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(((_CreatesFile(str(marker)),), {}), protocol=0)
    crafted = _rewrite(genuine["pt2"], tmp_path / "evil.pt2", lambda n, d: payload if "sample_inputs" in n else d)
    with pytest.raises(UnsafePickleError, match=r"(builtins|io)\.open.*trust_pickle=True"):
        load_model(crafted)
    assert not marker.exists()


def test_shape_expression_code_is_refused_before_torch_reads_it(genuine, tmp_path) -> None:
    """torch.export.load evaluates shape expressions with sympy.sympify, i.e. eval: one can run any code."""
    marker = tmp_path / "MARKER"
    symbol = "Symbol('s77', positive=True, integer=True)"

    def edit(name: str, data: bytes) -> bytes:
        if not name.endswith("models/model.json"):
            return data
        text = data.decode()
        assert symbol in text
        return text.replace(symbol, f"__import__('pathlib').Path({str(marker)!r}).touch() or {symbol}").encode()

    crafted = _rewrite(genuine["dynamic"], tmp_path / "evil.pt2", edit)
    with pytest.raises(UnsafePickleError, match="shape expression"):
        load_model(crafted)
    assert not marker.exists()


def test_torchscript_forward_writing_a_file_is_refused_naming_the_op(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "maps.pt"
    torch.jit.save(torch.jit.script(_MapsFile(str(marker))), str(path))
    with pytest.raises(UnsafePickleError, match="aten::from_file"):
        load_model(path)
    assert not marker.exists()
    module = load_model(path, trust_pickle=True).module  # trusted: the user's call
    with pytest.raises(UnsafeGraphError, match="forward calls aten::from_file"):
        check_script_module(module)


def test_torchscript_setstate_is_refused_before_loading(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "setstate.pt"
    torch.jit.save(torch.jit.script(_TouchesOnLoad(str(marker))), str(path))
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError, match="__setstate__"):
        load_model(path)
    assert not marker.exists(), "__setstate__ ran"


def test_torchscript_artifact_of_holocron_verify_is_checked(genuine, tmp_path) -> None:
    from holocron.export.parity.api import verify_files

    marker = tmp_path / "MARKER"
    artifact = tmp_path / "artifact.pt"
    torch.jit.save(torch.jit.script(_TouchesOnLoad(str(marker))), str(artifact))
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError, match="__setstate__"):
        verify_files(genuine["ts"], artifact, [SHAPE])
    assert not marker.exists()


_touch_library = torch.library.Library("holocron_test_evil", "FRAGMENT")


@torch.library.custom_op("holocron_test_evil::touch", mutates_args=())
def _touch(x: torch.Tensor, path: str) -> torch.Tensor:
    Path(path).touch()
    return x.clone()


@_touch.register_fake
def _(x: torch.Tensor, path: str) -> torch.Tensor:
    return torch.empty_like(x)


class _Touches(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.holocron_test_evil.touch(x, self.path) * 2


def test_pt2_graph_calling_an_op_outside_the_allow_list_is_refused(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "touch.pt2"
    torch.export.save(torch.export.export(_Touches(str(marker)), (torch.randn(SHAPE),)), path)
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError, match="holocron_test_evil::touch"):
        load_model(path)
    assert not marker.exists()


def test_graph_check_refuses_file_ops_in_a_program() -> None:
    program = torch.export.export(_Double(), (torch.randn(SHAPE),))
    check_exported_program(program)
    graph = program.graph_module.graph
    output = next(node for node in graph.nodes if node.op == "output")
    with graph.inserting_before(output):
        graph.call_function(torch.save, (output.args[0][0], "x.pt"))
    with pytest.raises(UnsafeGraphError, match=r"torch\.serialization\.save"):
        check_exported_program(program)


def test_weights_only_switch_is_restored(monkeypatch) -> None:
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    buffer = io.BytesIO()
    torch.save(_CreatesFile("/nonexistent/never"), buffer)
    with weights_only_loads(), pytest.raises(pickle.UnpicklingError, match=r"(builtins|io)\.open"):
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ
    assert os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] == "1"


def _huge_member_archive(path: Path, source: Path, size: int) -> Path:
    """``source`` plus a deflated member of ``size`` zero bytes (1 GiB of zeros deflate to under 5 MB)."""
    _rewrite(source, path, lambda n, d: d)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        prefix = archive.namelist()[0].split("/")[0]
        with archive.open(f"{prefix}/data/sample_inputs/huge.pkl", "w", force_zip64=True) as handle:
            block = bytes(1 << 24)
            for _ in range(size // len(block)):
                handle.write(block)
    return path


def test_a_gib_member_costs_the_check_no_more_than_64_mb(genuine, tmp_path) -> None:
    path = _huge_member_archive(tmp_path / "huge.pt2", genuine["pt2"], 1 << 30)
    assert path.stat().st_size < 8 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveCheckError, match="compressed member"):
            check_archive(path, "torch_export")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


# --- hostile archives (hypothesis) -----------------------------------------------------------------------------


def _payload(marker: Path, protocol: int, byte_names: bool) -> bytes:
    """A pickle that opens (creating) ``marker``, with the global's names pushed as str or as byte strings."""
    if not byte_names:
        return pickle.dumps(((_CreatesFile(str(marker)),), {}), protocol=protocol)
    # Hand-written stream: SHORT_BINBYTES names, STACK_GLOBAL, then the call (what the C unpickler accepts).
    name = str(marker).encode()
    body = b"C\x08builtinsC\x04open\x93" + b"C" + bytes([len(name)]) + name + b"C\x01w\x86R."
    return b"\x80\x04" + body


def _torch_save_zip(payload: bytes) -> bytes:
    """A torch.save zip archive whose data.pkl is ``payload``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


_WHERE = ["sample_inputs raw", "sample_inputs nested", "nested twice", "opaque constant"]
_DAMAGE = ["none", "truncated nested", "duplicate member", "bad crc", "huge member"]


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    protocol=st.integers(0, 5),
    byte_names=st.booleans(),
    where=st.sampled_from(_WHERE),
    damage=st.sampled_from(_DAMAGE),
)
def test_hostile_archives_never_run_code_and_stay_bounded(genuine, tmp_path, protocol, byte_names, where, damage):
    marker = tmp_path / f"MARKER-{protocol}-{byte_names}-{where}-{damage}".replace(" ", "_")
    payload = _payload(marker, protocol, byte_names)
    if where == "sample_inputs nested":
        payload = _torch_save_zip(payload)
    elif where == "nested twice":
        payload = _torch_save_zip(_torch_save_zip(payload))
    if damage == "truncated nested":
        payload = _torch_save_zip(payload)[:-30]
    member = "data/constants/opaque_obj_0" if where == "opaque constant" else "data/sample_inputs/model.pt"

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("sample_inputs/model.pt") and where != "opaque constant":
            return payload
        return data

    path = _rewrite(genuine["pt2"], tmp_path / f"{marker.name}.pt2", edit)
    with zipfile.ZipFile(path, "a") as archive:
        prefix = archive.namelist()[0].split("/")[0]
        if where == "opaque constant":
            archive.writestr(f"{prefix}/{member}", payload)
        if damage == "duplicate member":
            archive.writestr(f"{prefix}/{member}", payload)
    if damage == "bad crc":
        data = bytearray(path.read_bytes())
        index = data.find(payload[:16]) if len(payload) >= 16 else -1
        if index >= 0:
            data[index + 8] ^= 0xFF
            path.write_bytes(bytes(data))
    if damage == "huge member":
        path = _huge_member_archive(tmp_path / f"{marker.name}-huge.pt2", path, 128 << 20)
    tracemalloc.start()
    try:
        with pytest.raises((UnsafePickleError, ModelLoadError)):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not marker.exists(), "a hostile archive ran code"
    assert peak < 96 << 20
    assert MAX_MEMBER_BYTES == 64 << 20


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["from_file forward", "setstate", "custom op pt2"]))
def test_hostile_graphs_never_run(tmp_path, kind) -> None:
    marker = tmp_path / f"MARKER-{kind.replace(' ', '_')}"
    path = tmp_path / f"{marker.name}.model"
    if kind == "from_file forward":
        torch.jit.save(torch.jit.script(_MapsFile(str(marker))), str(path))
    elif kind == "setstate":
        torch.jit.save(torch.jit.script(_TouchesOnLoad(str(marker))), str(path))
    else:
        torch.export.save(torch.export.export(_Touches(str(marker)), (torch.randn(SHAPE),)), path)
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError):
        loaded = load_model(path)
        loaded.module(torch.randn(SHAPE))
    assert not marker.exists()
