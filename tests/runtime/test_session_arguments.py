"""create_session/InferenceSession take onnxruntime's arguments or refuse them clearly: wrong types are a TypeError
naming the argument, options that already hold the library just work (and say so), an ORT-format model opens, and
a relative HOLOCRON_RUNTIME_LIBRARY is the file it names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import single_node_model

import holocron.runtime as runtime


def _add2d() -> tuple[bytes, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    feeds = {
        "X": rng.standard_normal((1, 3, 5, 5)).astype(np.float32),
        "W": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
    }
    return single_node_model("Add2d", feeds, {"pads": [1, 1, 1, 1]}).SerializeToString(), feeds


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"use_kernels": "no"}, "use_kernels"),
        ({"use_kernels": 1}, "use_kernels"),
        ({"providers": "CPUExecutionProvider"}, "providers"),
        ({"providers": [3]}, "providers"),
        ({"sess_options": 42}, "sess_options"),
    ],
)
def test_wrong_argument_types_name_the_argument(kwargs: dict, argument: str) -> None:
    model, _ = _add2d()
    with pytest.raises(TypeError, match=f"`{argument}`"):
        runtime.create_session(model, **kwargs)


@pytest.mark.parametrize("value", [123, None, 1.5, ["model.onnx"]])
def test_a_model_that_is_no_path_or_bytes_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match="`path_or_bytes`"):
        runtime.create_session(value)  # type: ignore[arg-type]


def test_options_on_which_the_user_registered_the_library_just_work(library: Path) -> None:
    import onnxruntime as ort

    model, feeds = _add2d()
    options = ort.SessionOptions()
    options.register_custom_ops_library(runtime.library_path())  # as the README shows
    session = runtime.InferenceSession(model, options)
    assert session.run(None, feeds)[0].shape == (1, 2, 5, 5)
    other = ort.SessionOptions()
    other.register_custom_ops_library(runtime.library_path())
    _, with_kernels = runtime.create_session(model, sess_options=other, use_kernels=False)
    assert with_kernels is True  # the kernels run: the options hold them


def test_ort_format_model_opens(library: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    model, feeds = _add2d()
    converted = tmp_path / "add2d.ort"
    options = runtime.session_options()
    options.optimized_model_filepath = str(converted)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    assert converted.read_bytes()[4:8] == b"ORTM"
    session, with_kernels = runtime.create_session(converted, use_kernels=True)
    assert with_kernels is True
    np.testing.assert_allclose(
        session.run(None, feeds)[0], runtime.InferenceSession(model).run(None, feeds)[0], rtol=1e-6
    )


def test_relative_library_override_is_the_file_it_names(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(library, tmp_path / library.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(runtime.LIBRARY_ENV, library.name)
    model, feeds = _add2d()
    session, with_kernels = runtime.create_session(model, use_kernels=True)
    assert with_kernels is True
    assert session.run(None, feeds)[0].shape == (1, 2, 5, 5)
