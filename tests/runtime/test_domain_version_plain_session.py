"""Domain versions in a plain onnxruntime session that registers the library itself (issue 16, finding 3).

This is how Triton's onnxruntime backend runs a model: ``so.register_custom_ops_library(library_path())``, then
``onnxruntime.InferenceSession(model, so)``, with no holocron Python code in between. The wanted behaviour: a model
importing the ``holocron`` domain at a version the kernels do not implement is refused with an onnxruntime error naming
the op and both versions, or runs its model-local fallback functions when it has them.

onnxruntime gives a custom-op library no way to get there (checked against its sources, 1.21 to 1.32):

- its custom-op registry builds one schema per op name, with the first registered kernel's start version as
  since-version, and registers the domain for versions 1 to 1000: a node of a model importing any version from 1 to
  1000 resolves to that schema, and its since-version is the schema's, 1;
- kernels are matched against the node's since-version, not the model's import, so the end version a library gives
  its ops (ours: start = end = 1) is never compared with the import;
- a node that resolved to a registered schema is never inlined from a model-local function (only nodes without a
  schema take the function), so even a kernel that refused such a node could not make the fallback run;
- neither the kernel info nor the shape-inference context of the C API exposes the model's opset imports.

So the version check lives in ``holocron.runtime.create_session`` / ``InferenceSession``
(``test_runtime_api.py``), and the wanted behaviour here is recorded as a strict expected failure: if onnxruntime ever
starts to honour the registered range, these tests pass, the strict marker fails the run, and the library's range
(``MakeLiteOp`` in ``runtime/src/ops/glue.h``) does the check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import single_node_model
from onnx import helper

from holocron.contract import DOMAIN, DOMAIN_VERSION

ORT_LIMITATION = (
    "onnxruntime matches custom kernels against the schema's since-version (1 for every import from 1 to 1000), not "
    "the model's import of the domain, and never inlines a node that has a schema; the library cannot see the import"
)


def _model(version: int, with_function: bool) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """An Add2d node in a model importing ``holocron`` at ``version``, with a fallback whose output shows it ran."""
    x = np.arange(2 * 2 * 4 * 4, dtype=np.float32).reshape(2, 2, 4, 4)
    functions = []
    if with_function:  # not Add2d's semantics: -X (shape of X) tells it apart from the kernel's (2, 3, 2, 2)
        body = [helper.make_node("Neg", ["X"], ["Y"])]
        functions.append(
            helper.make_function(DOMAIN, "Add2d", ["X", "W", "B"], ["Y"], body, [helper.make_opsetid("", 18)])
        )
    model = single_node_model("Add2d", {"X": x, "W": (3, 2, 3, 3)}, functions=functions)
    for entry in model.opset_import:
        if entry.domain == DOMAIN:
            entry.version = version
    return model, {"X": x, "W": np.ones((3, 2, 3, 3), np.float32)}


def _plain_session(model: onnx.ModelProto, library: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


OTHER_VERSIONS = [2, 3, 99, 1000]


def test_the_kernels_version_runs_the_kernels(library: Path) -> None:
    model, feeds = _model(DOMAIN_VERSION, with_function=True)
    (y,) = _plain_session(model, library).run(None, feeds)
    assert y.shape == (2, 3, 2, 2)


@pytest.mark.xfail(strict=True, raises=pytest.fail.Exception, reason=ORT_LIMITATION)  # the kernels run: no error
@pytest.mark.parametrize("version", OTHER_VERSIONS)
def test_other_version_without_fallback_is_refused(library: Path, version: int) -> None:
    model, feeds = _model(version, with_function=False)
    with pytest.raises(Exception, match=rf"Add2d.*version {version}.*version {DOMAIN_VERSION}"):
        _plain_session(model, library).run(None, feeds)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=ORT_LIMITATION)  # the kernels' output, not -X
@pytest.mark.parametrize("version", OTHER_VERSIONS)
def test_other_version_with_fallback_runs_the_fallback(library: Path, version: int) -> None:
    model, feeds = _model(version, with_function=True)
    (y,) = _plain_session(model, library).run(None, feeds)
    np.testing.assert_array_equal(y, -feeds["X"])


@pytest.mark.parametrize("with_function", [False, True], ids=["no-fallback", "fallback"])
def test_versions_beyond_the_custom_registry_are_refused_by_onnxruntime(library: Path, with_function: bool) -> None:
    """onnxruntime registers a custom domain for versions 1 to 1000; it refuses a model importing a later one."""
    model, _ = _model(1001, with_function)
    with pytest.raises(Exception, match=r"1001.*holocron.*1000"):
        _plain_session(model, library)
