"""``holocron-verify``: check an existing ONNX or TorchScript artifact against the eager model, for CI parity jobs.

Examples::

    holocron-verify model.pt model.onnx --input-shape 1,3,224,224 --report parity.json
    holocron-verify model.pt model.onnx --no-kernels --localize
    holocron-verify model.pt model_scripted.pt --input-shape 1,3,224,224

MODEL is the eager model (a TorchScript archive, a ``torch.export`` archive, or a pickled module with
``--trust-pickle``), ARTIFACT the exported file: a TorchScript archive (a zip file) or an ONNX model (anything else).
The input shape defaults to the ONNX model's when all its input dimensions are fixed, else to the shapes recorded in a
``.pt2`` MODEL.

Exit status: 0 the artifact matches; 1 MODEL or ARTIFACT cannot be loaded or run; 2 invalid arguments (one line
naming the flag, before anything is loaded); 3 the artifact diverges (the report table says where).
"""

from __future__ import annotations

import argparse
import sys
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .cli import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFICATION_FAILED,
    UsageError,
    _OneLineParser,
    _quiet_libraries,
    add_criterion_arguments,
    add_input_shape_argument,
    captured_stderr,
    check_output_paths,
    seed_type,
)

__all__ = ["build_parser", "main"]

_PROG = "holocron-verify"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``holocron-verify``."""
    parser = _OneLineParser(
        prog=_PROG,
        description="Check an exported ONNX model or TorchScript archive against the eager PyTorch model it was "
        "made from (default criterion: error against a float64 run of the eager model, compared with eager "
        "float32's own).",
        epilog="Exit status: 0 pass, 1 load failure, 2 invalid arguments, 3 the artifact diverges.",
    )
    parser.add_argument(
        "model",
        type=Path,
        metavar="MODEL",
        help="eager model: TorchScript archive, torch.export archive (.pt2) or pickled module (needs --trust-pickle)",
    )
    parser.add_argument("artifact", type=Path, metavar="ARTIFACT", help="ONNX model or TorchScript archive to check")
    add_input_shape_argument(parser, "the ONNX model's fixed input shapes, or those recorded in a .pt2 MODEL")
    parser.add_argument("--seed", type=seed_type, default=0, help="seed of the random inputs (default 0)")
    add_criterion_arguments(parser.add_argument_group("criterion"))
    parser.add_argument(
        "--no-kernels",
        dest="use_kernels",
        action="store_const",
        const=False,
        default=None,
        help="run holocron ops on their standard-ONNX fallback functions (default: holocron's kernels when built)",
    )
    parser.add_argument("--report", dest="report_path", type=Path, help="write the report as JSON to this file")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a pickled MODEL; loading a pickle runs arbitrary code from the file",
    )
    parser.add_argument("--traceback", action="store_true", help="on failure, also print the Python traceback")
    return parser


def _is_torchscript(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if _is_torchscript(args.artifact):
        onnx_only = {"--no-kernels": args.use_kernels is not None, "--localize": args.localize}
        given = [flag for flag, present in onnx_only.items() if present]
        if given:
            parser.error(f"{', '.join(given)} only apply to an ONNX ARTIFACT ({str(args.artifact)!r} is TorchScript)")
    try:
        check_output_paths({"--report": args.report_path}, {"MODEL": args.model, "ARTIFACT": args.artifact}, force=True)
    except UsageError as error:
        parser.error(str(error))


def _onnx_input_shapes(proto: object) -> tuple[tuple[int, ...], ...] | None:
    """The ONNX model's input shapes when every dimension is fixed, else None."""
    shapes = []
    initializers = {init.name for init in proto.graph.initializer}  # type: ignore[attr-defined]
    for value in proto.graph.input:  # type: ignore[attr-defined]
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if not dims or any(not dim.HasField("dim_value") or dim.dim_value < 1 for dim in dims):
            return None
        shapes.append(tuple(dim.dim_value for dim in dims))
    return tuple(shapes) or None


def _run(args: argparse.Namespace) -> tuple[int, str]:
    import torch

    from .errors import ModelLoadError
    from .model_loading import load_model
    from .verification import verify, verify_torchscript

    loaded = load_model(args.model, trust_pickle=args.trust_pickle)
    if _is_torchscript(args.artifact):
        try:
            archive = torch.jit.load(str(args.artifact), map_location="cpu")
        except Exception as error:
            raise ModelLoadError(f"cannot load TorchScript ARTIFACT {str(args.artifact)!r}: {error}") from error
        shapes = _shapes(args, loaded, None)
        report = verify_torchscript(
            loaded.module, archive, list(shapes), atol=args.atol, rtol=args.rtol, seed=args.seed
        )
    else:
        from .verification import _load

        proto = _load(args.artifact)
        shapes = _shapes(args, loaded, _onnx_input_shapes(proto))
        report = verify(
            loaded.module,
            proto,
            list(shapes),
            atol=args.atol,
            rtol=args.rtol,
            seed=args.seed,
            use_kernels=args.use_kernels,
            localize=args.localize,
        )
    if args.report_path is not None:
        from .files import write_bytes_atomically

        write_bytes_atomically(args.report_path, (report.to_json() + "\n").encode(), overwrite=True)
    print(report.format_table(), flush=True)
    if not report.passed:
        return EXIT_VERIFICATION_FAILED, f"{_PROG}: error: {report.failure_summary()}"
    return EXIT_OK, ""


def _shapes(args: argparse.Namespace, loaded: object, from_onnx: tuple[tuple[int, ...], ...] | None) -> tuple:
    from .errors import ModelLoadError

    if args.input_shapes:
        return tuple(args.input_shapes)
    if from_onnx is not None:
        return from_onnx
    example = getattr(loaded, "example_inputs", None)
    if example is not None:
        return tuple(tuple(t.shape) for t in example)
    raise ModelLoadError("--input-shape is required: neither ARTIFACT nor MODEL fixes the input shapes")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``holocron-verify``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    for path, what in ((args.model, "MODEL"), (args.artifact, "ARTIFACT")):
        if not path.is_file():
            print(f"{_PROG}: error: {what} {str(path)!r} is not a file", file=sys.stderr)
            return EXIT_FAILURE
    outcome: list[tuple[int, BaseException | None, str]] = []
    with captured_stderr() as library_log:  # torch's and onnxruntime's own log lines stay off stderr
        outcome.append(_guarded_run(args))
    status, error, message = outcome[0]
    if error is not None and args.traceback:
        traceback.print_exception(error)
        sys.stderr.write(library_log[0])
    if message:
        print(message, file=sys.stderr)
    return status


def _guarded_run(args: argparse.Namespace) -> tuple[int, BaseException | None, str]:
    """:func:`_run` with every failure turned into (exit status, the error, its one line for stderr)."""
    _quiet_libraries()
    from .errors import ExportError

    try:
        status, summary = _run(args)
    except UsageError as error:
        return EXIT_USAGE, error, f"{_PROG}: error: {_one_line(error)} (see --help)"
    except (ExportError, ValueError, TypeError, OSError) as error:
        return EXIT_FAILURE, error, f"{_PROG}: error: {_one_line(error)}"
    except Exception as error:  # a bug, still reported in one line; --traceback shows where
        return EXIT_FAILURE, error, f"{_PROG}: error: internal error ({type(error).__name__}): {_one_line(error)}"
    return status, None, summary


def _one_line(error: BaseException) -> str:
    return " ".join((getattr(error, "cli_message", None) or str(error)).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
