"""onnxruntime sessions, with holocron's custom-op library registered or without it: the one place they are opened."""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from holocron.contract import DOMAIN, DOMAIN_VERSION

from ._library import is_available, library_path

if TYPE_CHECKING:
    import onnxruntime

__all__ = [
    "InferenceSession",
    "UnsupportedDomainVersionError",
    "create_session",
    "register_library",
    "session_options",
]


class UnsupportedDomainVersionError(RuntimeError):
    """A model imports the ``holocron`` domain at a version the kernels do not implement and has no fallback for
    some of its ``holocron`` ops."""


def _holocron_op_types(model: Any) -> set[str]:
    """Op types of the ``holocron`` nodes of ``model``: main graph, subgraphs and the bodies of other functions."""
    import onnx

    found: set[str] = set()

    def walk(nodes: Any) -> None:
        for node in nodes:
            if node.domain == DOMAIN:
                found.add(node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g.node)
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    for graph in attribute.graphs:
                        walk(graph.node)

    walk(model.graph.node)
    for function in model.functions:
        if function.domain != DOMAIN:
            walk(function.node)
    return found


#: The file identifier of onnxruntime's own (flatbuffer) model format, at bytes 4-8 of a ``.ort`` file.
_ORT_FORMAT_ID = b"ORTM"


def _is_ort_format(path_or_bytes: str | bytes) -> bool:
    """Whether the model is in onnxruntime's ORT format (a flatbuffer, which ``onnx`` cannot parse)."""
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes[4:8] == _ORT_FORMAT_ID
    try:
        with open(path_or_bytes, "rb") as handle:
            return handle.read(8)[4:8] == _ORT_FORMAT_ID
    except OSError:
        return False  # onnxruntime names the problem


def _kernels_allowed(path_or_bytes: str | bytes) -> bool:
    """Whether holocron's kernels may run the model: False when it imports another ``holocron`` version and carries a
    model-local function for each of its ``holocron`` op types (they run instead); True when it imports version
    :data:`DOMAIN_VERSION`, no ``holocron`` domain, when it is in the ORT format (its imports are not read here), or
    when ``onnx`` is not installed (no check).

    Raises:
        UnsupportedDomainVersionError: another version, and some ``holocron`` op type has no function.
    """
    if _is_ort_format(path_or_bytes):
        return True
    try:
        import onnx
    except ImportError:
        return True
    if isinstance(path_or_bytes, bytes):
        model = onnx.load_from_string(path_or_bytes)
    else:
        model = onnx.load(path_or_bytes, load_external_data=False)
    version = next((o.version for o in model.opset_import if o.domain == DOMAIN), None)
    if version is None or version == DOMAIN_VERSION:
        return True
    functions = {f.name for f in model.functions if f.domain == DOMAIN}
    missing = sorted(_holocron_op_types(model) - functions)
    if missing:
        raise UnsupportedDomainVersionError(
            f"the model imports the {DOMAIN!r} domain at version {version}, but holocron's kernels implement version "
            f"{DOMAIN_VERSION} only, and the model carries no fallback function for {', '.join(missing)}: re-export "
            f"it with this holocron version, or with its fallback functions"
        )
    return False


# Options the library was registered into: registering twice makes session creation fail ("Domain already set").
_registered: weakref.WeakSet[onnxruntime.SessionOptions] = weakref.WeakSet()


def _probe_model() -> bytes | None:
    """A one-node model whose ``holocron`` node has no fallback function: it opens only where the kernels are
    registered (None without ``onnx``)."""
    try:
        from onnx import TensorProto, helper
    except ImportError:
        return None
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Add2d", ["X", "W"], ["Y"], domain=DOMAIN)],
        "holocron_probe",
        [value("X", TensorProto.FLOAT, [1, 1, 1, 1]), value("W", TensorProto.FLOAT, [1, 1, 1, 1])],
        [value("Y", TensorProto.FLOAT, [1, 1, 1, 1])],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def _holds_library(options: onnxruntime.SessionOptions) -> bool:
    """Whether ``options`` already hold holocron's library (registered by the caller, as the README shows): a probe
    session opens a model only the kernels can run. Its outputs (profile, optimized model) are switched off."""
    import onnxruntime

    if options in _registered:
        return True
    probe = _probe_model()
    if probe is None:
        return False
    saved = (options.enable_profiling, options.optimized_model_filepath, options.log_severity_level)
    options.enable_profiling, options.optimized_model_filepath, options.log_severity_level = False, "", 4
    try:
        onnxruntime.InferenceSession(probe, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception:
        return False
    finally:
        options.enable_profiling, options.optimized_model_filepath, options.log_severity_level = saved
    _registered.add(options)
    return True


def register_library(options: onnxruntime.SessionOptions) -> onnxruntime.SessionOptions:
    """Register holocron's custom-op library into ``options`` (once) and return them.

    Args:
        options: the session options to register the library into.

    Returns:
        ``options``.

    Raises:
        RuntimeNotBuiltError: the library was not built.
    """
    if options not in _registered:
        options.register_custom_ops_library(library_path())
        _registered.add(options)
    return options


def session_options(
    intra_op_num_threads: int | None = None,
    inter_op_num_threads: int | None = None,
    log_severity_level: int | None = None,
) -> onnxruntime.SessionOptions:
    """New ``onnxruntime.SessionOptions`` with the ``holocron`` custom-op domain registered.

    Args:
        intra_op_num_threads: threads of the intra-op pool, which the holocron kernels also use; onnxruntime's
            default (one per physical core) when ``None``.
        inter_op_num_threads: threads running independent nodes concurrently; onnxruntime's default when ``None``.
        log_severity_level: onnxruntime log level (0 verbose ... 4 fatal); its default when ``None``.

    Returns:
        The options.

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to build it.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if intra_op_num_threads is not None:
        options.intra_op_num_threads = intra_op_num_threads
    if inter_op_num_threads is not None:
        options.inter_op_num_threads = inter_op_num_threads
    if log_severity_level is not None:
        options.log_severity_level = log_severity_level
    return register_library(options)


def create_session(
    path_or_bytes: str | bytes | os.PathLike[str],
    *,
    use_kernels: bool | None = None,
    providers: Sequence[str] | None = None,
    sess_options: onnxruntime.SessionOptions | None = None,
    log_severity_level: int | None = None,
    **kwargs: Any,
) -> tuple[onnxruntime.InferenceSession, bool]:
    """Open an ``onnxruntime.InferenceSession``, with holocron's kernels or on the models' fallback functions.

    Args:
        path_or_bytes: ONNX model file or serialized model.
        use_kernels: True registers holocron's custom-op library (an error when it is not built), False opens a plain
            session (``holocron`` nodes then run their standard-ONNX fallback functions), None uses the library when
            :func:`is_available`.
        providers: execution providers, in order of preference; CPU only when ``None`` or empty.
        sess_options: options to use; with the kernels, the library is registered into them (once), unless they
            hold it already (the caller registered it: then the kernels run, and the flag returned says so).
        log_severity_level: onnxruntime log level (0 verbose ... 4 fatal) set on the options; left as is when
            ``None``.
        **kwargs: passed on to ``onnxruntime.InferenceSession`` (``provider_options``, ...).

    Returns:
        The session and whether holocron's kernels are registered in it.

    Raises:
        TypeError: an argument of the wrong type (named): ``path_or_bytes`` not a path or bytes, ``use_kernels`` not
            a bool or None, ``providers`` a string or not a list of names, ``sess_options`` not session options.
        RuntimeNotBuiltError: ``use_kernels=True`` but the library was not built; the message says how to build it.
        UnsupportedDomainVersionError: the model imports the ``holocron`` domain at a version other than the one the
            kernels implement and lacks the fallback function of some ``holocron`` op type. With a function for each,
            the session opens without the library (whatever ``use_kernels``), so the functions run.
    """
    import onnxruntime

    path_or_bytes = _check_arguments(path_or_bytes, use_kernels, providers, sess_options)
    with_kernels = is_available() if use_kernels is None else use_kernels
    with_kernels = _kernels_allowed(path_or_bytes) and with_kernels
    options = sess_options if sess_options is not None else onnxruntime.SessionOptions()
    if log_severity_level is not None:
        options.log_severity_level = log_severity_level
    already = sess_options is not None and is_available() and _holds_library(options)
    if with_kernels and not already:
        register_library(options)
    session = onnxruntime.InferenceSession(
        path_or_bytes, sess_options=options, providers=list(providers or ["CPUExecutionProvider"]), **kwargs
    )
    return session, with_kernels or already


def _check_arguments(path_or_bytes: Any, use_kernels: Any, providers: Any, sess_options: Any) -> str | bytes:
    """``path_or_bytes`` as a str or bytes; a ``TypeError`` naming the argument for a value of the wrong type."""
    import onnxruntime

    if isinstance(path_or_bytes, os.PathLike):
        path_or_bytes = os.fspath(path_or_bytes)
    if not isinstance(path_or_bytes, (str, bytes)):
        raise TypeError(
            "`path_or_bytes` must be a path (str or os.PathLike) or the model's bytes; "
            f"got {type(path_or_bytes).__name__}"
        )
    if use_kernels is not None and not isinstance(use_kernels, bool):
        raise TypeError(f"`use_kernels` must be True, False or None; got {use_kernels!r}")
    if providers is not None:
        if isinstance(providers, (str, bytes)) or not isinstance(providers, Sequence):
            raise TypeError(
                f"`providers` must be a list of provider names, e.g. ['CPUExecutionProvider']; got {providers!r}"
            )
        for provider in providers:
            named = isinstance(provider, tuple) and len(provider) == 2 and isinstance(provider[0], str)
            if not (isinstance(provider, str) or named):
                raise TypeError(f"`providers` must hold provider names (or (name, options) pairs); got {provider!r}")
    if sess_options is not None and not isinstance(sess_options, onnxruntime.SessionOptions):
        raise TypeError(f"`sess_options` must be an onnxruntime.SessionOptions; got {type(sess_options).__name__}")
    return path_or_bytes


def InferenceSession(  # noqa: N802 - mirrors onnxruntime.InferenceSession
    path_or_bytes: str | bytes | os.PathLike[str],
    sess_options: onnxruntime.SessionOptions | None = None,
    providers: list[str] | None = None,
    **kwargs: Any,
) -> onnxruntime.InferenceSession:
    """``onnxruntime.InferenceSession`` that runs the ``holocron`` ops with holocron's kernels.

    Takes its arguments in onnxruntime's order, so it replaces ``onnxruntime.InferenceSession`` in existing code.

    Args:
        path_or_bytes: ONNX model file or serialized model.
        sess_options: options to use; the library is registered into them (once) when it is not already.
        providers: execution providers, in order of preference; CPU only when ``None``.
        **kwargs: passed on to ``onnxruntime.InferenceSession`` (``provider_options``, ...).

    Returns:
        The session, from :func:`create_session` with ``use_kernels=True``.

    Raises:
        RuntimeNotBuiltError: the library was not built; the message says how to build it.
    """
    session, _ = create_session(
        path_or_bytes, use_kernels=True, providers=providers, sess_options=sess_options, **kwargs
    )
    return session
