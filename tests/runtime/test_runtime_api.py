"""holocron.runtime's Python helpers and the shape of the built library."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import single_node_model

import holocron.runtime as runtime


def add2d_model_and_feeds():
    rng = np.random.default_rng(0)
    feeds = {
        "X": rng.standard_normal((1, 3, 5, 5)).astype(np.float32),
        "W": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
    }
    return single_node_model("Add2d", feeds, {"pads": [1, 1, 1, 1]}), feeds


def test_library_is_found(library: Path) -> None:
    assert runtime.is_available()
    assert isinstance(runtime.library_path(), str)
    assert Path(runtime.library_path()) == library


def test_documented_registration_line_runs_as_written(library: Path) -> None:
    """The README/docstring line, character for character: onnxruntime takes only a str path."""
    import onnxruntime as ort

    import holocron

    model, feeds = add2d_model_and_feeds()
    so = ort.SessionOptions()
    so.register_custom_ops_library(holocron.runtime.library_path())
    (out,) = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)
    assert out.shape == (1, 2, 5, 5)


def test_a_relative_override_is_taken_from_the_working_directory(
    library: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bare file name in HOLOCRON_RUNTIME_LIBRARY names the file in the working directory: handed to onnxruntime as
    given, dlopen would look for it in the system folders and fail."""
    import onnxruntime as ort

    (tmp_path / "libholocron_ort.so").write_bytes(library.read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(runtime.LIBRARY_ENV, "libholocron_ort.so")
    assert runtime.library_path() == str(tmp_path / "libholocron_ort.so")
    model, feeds = add2d_model_and_feeds()
    so = ort.SessionOptions()
    so.register_custom_ops_library(runtime.library_path())
    (out,) = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)
    assert out.shape == (1, 2, 5, 5)


def test_missing_library_says_how_to_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(runtime.LIBRARY_ENV, str(tmp_path / "missing.so"))
    assert not runtime.is_available()
    # The installed library exists here (make setup), so the message offers it; tests/install covers a missing one.
    with pytest.raises(runtime.RuntimeNotBuiltError, match=r"missing\.so' is not a file; .*unset it"):
        runtime.library_path()
    with pytest.raises(runtime.RuntimeNotBuiltError):
        runtime.session_options()


def test_session_options_register_the_domain(library: Path) -> None:
    import onnxruntime as ort

    model, feeds = add2d_model_and_feeds()
    options = runtime.session_options(intra_op_num_threads=3, inter_op_num_threads=1)
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    (out,) = ort.InferenceSession(model.SerializeToString(), options).run(None, feeds)
    assert out.shape == (1, 2, 5, 5)


def test_inference_session_from_bytes_path_and_shared_options(library: Path, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    model, feeds = add2d_model_and_feeds()
    path = tmp_path / "add2d.onnx"
    onnx.save(model, path)
    options = ort.SessionOptions()
    from_bytes = runtime.InferenceSession(model.SerializeToString(), sess_options=options)
    # The same options a second time: the library must not be registered twice (onnxruntime would refuse).
    from_path = runtime.InferenceSession(path, sess_options=options)
    assert from_bytes.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(from_bytes.run(None, feeds)[0], from_path.run(None, feeds)[0])


def test_library_exports_only_the_entry_point_and_isa_query_and_links_no_onnxruntime(library: Path) -> None:
    readelf = shutil.which("readelf")
    if readelf is None or library.suffix != ".so":
        pytest.skip("needs readelf and an ELF library")
    dynamic = subprocess.run([readelf, "--dyn-syms", "--wide", str(library)], capture_output=True, text=True).stdout
    exported = {
        line.split()[-1]
        for line in dynamic.splitlines()
        if " GLOBAL " in line and " UND " not in line and line.split()[-1] != "Name"
    }
    assert exported == {"RegisterCustomOps", "HolocronCpuIsa"}
    needed = subprocess.run([readelf, "-d", str(library)], capture_output=True, text=True).stdout
    assert "onnxruntime" not in needed


def _version_model(version: int, with_functions: bool) -> tuple[bytes, dict[str, np.ndarray]]:
    """An Add2d node of a model importing ``holocron`` at ``version``, optionally with a trivial function body."""
    from onnx import helper

    x = np.arange(2 * 2 * 4 * 4, dtype=np.float32).reshape(2, 2, 4, 4)
    model = single_node_model("Add2d", {"X": x, "W": (3, 2, 3, 3)})
    for entry in model.opset_import:
        if entry.domain == "holocron":
            entry.version = version
    if with_functions:  # not Add2d's semantics: a body whose output shows that it ran
        body = [helper.make_node("Neg", ["X"], ["Y"])]
        model.functions.append(
            helper.make_function("holocron", "Add2d", ["X", "W", "B"], ["Y"], body, [helper.make_opsetid("", 18)])
        )
    return model.SerializeToString(), {"X": x, "W": np.ones((3, 2, 3, 3), np.float32)}


def test_the_kernels_domain_version_is_the_contracts() -> None:
    from holocron.contract import DOMAIN, DOMAIN_VERSION
    from holocron.runtime import _session

    assert (_session.DOMAIN, _session.DOMAIN_VERSION) == (DOMAIN, DOMAIN_VERSION)


def test_other_domain_version_without_functions_is_refused(library: Path) -> None:
    model, _ = _version_model(2, with_functions=False)
    with pytest.raises(runtime.UnsupportedDomainVersionError, match=r"version 2.*version 1 only.*Add2d"):
        runtime.create_session(model, use_kernels=True)
    with pytest.raises(runtime.UnsupportedDomainVersionError, match="Add2d"):
        runtime.InferenceSession(model)


def test_other_domain_version_with_functions_runs_them_without_the_library(library: Path, tmp_path: Path) -> None:
    model, feeds = _version_model(2, with_functions=True)
    path = tmp_path / "v2.onnx"
    path.write_bytes(model)
    for source in (model, path, str(path)):
        session, with_kernels = runtime.create_session(source, use_kernels=True)
        assert with_kernels is False
        (y,) = session.run(None, feeds)
        np.testing.assert_array_equal(y, -feeds["X"])


def test_the_kernels_domain_version_still_runs_the_kernels(library: Path) -> None:
    model, feeds = _version_model(1, with_functions=True)
    session, with_kernels = runtime.create_session(model, use_kernels=True)
    assert with_kernels is True
    (y,) = session.run(None, feeds)
    assert y.shape == (2, 3, 2, 2) and (y <= 0).all()


def test_inference_session_takes_onnxruntime_positional_order(library: Path) -> None:
    """A drop-in for ``onnxruntime.InferenceSession(path, sess_options, providers)``, positionally too."""
    import onnxruntime as ort

    model, feeds = add2d_model_and_feeds()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = runtime.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.get_session_options().intra_op_num_threads == 1
    reference = ort.InferenceSession(model.SerializeToString(), runtime.session_options(), ["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, feeds)[0], reference.run(None, feeds)[0])
