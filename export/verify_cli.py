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
    EXIT_VERIFICATION_FAILED,
    _input_shape,
    _OneLineParser,
    _quiet_libraries,
    add_criterion_arguments,
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
    parser.add_argument(
        "--input-shape",
        dest="input_shapes",
        type=_input_shape,
        action="append",
        default=[],
        metavar="N,C,H,W",
        help="shape of one model input; repeat for several inputs (default: the ONNX model's fixed input shapes, "
        "or those recorded in a .pt2 MODEL)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
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
    if args.report_path is not None and args.report_path.resolve() in (args.model.resolve(), args.artifact.resolve()):
        parser.error("--report must not name MODEL or ARTIFACT")


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


def _run(args: argparse.Namespace) -> int:
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
        args.report_path.write_text(report.to_json() + "\n")
    print(report.format_table())
    if not report.passed:
        print(f"{_PROG}: error: {report.failure_summary()}", file=sys.stderr)
        return EXIT_VERIFICATION_FAILED
    return EXIT_OK


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
    _quiet_libraries()
    from .errors import ExportError

    try:
        return _run(args)
    except (ExportError, ValueError, TypeError, OSError) as error:
        return _fail(args, error)
    except Exception as error:  # a bug, still reported in one line; --traceback shows where
        return _fail(args, error, prefix=f"internal error ({type(error).__name__}): ")


def _fail(args: argparse.Namespace, error: BaseException, prefix: str = "") -> int:
    if args.traceback:
        traceback.print_exception(error)
    text = " ".join(str(error).split()) or type(error).__name__
    print(f"{_PROG}: error: {prefix}{text}", file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
