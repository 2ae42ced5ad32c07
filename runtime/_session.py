"""onnxruntime sessions, with holocron's custom-op library registered or without it: the one place they are opened."""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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

#: The ``holocron`` domain and the version of it that the library's kernels implement (holocron.ops.contract's
#: ``DOMAIN`` and ``DOMAIN_VERSION``; spelled out here so that the runtime helpers import no torch).
DOMAIN, DOMAIN_VERSION = "holocron", 1


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


def _kernels_allowed(path_or_bytes: str | bytes) -> bool:
    """Whether holocron's kernels may run the model: False when it imports another ``holocron`` version and carries a
    model-local function for each of its ``holocron`` op types (they run instead); True when it imports version
    :data:`DOMAIN_VERSION`, no ``holocron`` domain, or when ``onnx`` is not installed (no check).

    Raises:
        UnsupportedDomainVersionError: another version, and some ``holocron`` op type has no function.
    """
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
        sess_options: options to use; with the kernels, the library is registered into them (once).
        log_severity_level: onnxruntime log level (0 verbose ... 4 fatal) set on the options; left as is when
            ``None``.
        **kwargs: passed on to ``onnxruntime.InferenceSession`` (``provider_options``, ...).

    Returns:
        The session and whether holocron's kernels are registered in it.

    Raises:
        RuntimeNotBuiltError: ``use_kernels=True`` but the library was not built; the message says how to build it.
        UnsupportedDomainVersionError: the model imports the ``holocron`` domain at a version other than the one the
            kernels implement and lacks the fallback function of some ``holocron`` op type. With a function for each,
            the session opens without the library (whatever ``use_kernels``), so the functions run.
    """
    import onnxruntime

    if isinstance(path_or_bytes, os.PathLike):
        path_or_bytes = os.fspath(path_or_bytes)
    with_kernels = is_available() if use_kernels is None else use_kernels
    with_kernels = _kernels_allowed(path_or_bytes) and with_kernels
    options = sess_options if sess_options is not None else onnxruntime.SessionOptions()
    if log_severity_level is not None:
        options.log_severity_level = log_severity_level
    if with_kernels:
        register_library(options)
    session = onnxruntime.InferenceSession(
        path_or_bytes, sess_options=options, providers=list(providers or ["CPUExecutionProvider"]), **kwargs
    )
    return session, with_kernels


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
