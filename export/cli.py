"""``holocron-export``: export a model file (or the built-in demo) to ONNX or TorchScript, verified against eager.

Examples::

    holocron-export model.pt --format onnx -o model.onnx --input-shape 1,16,16,16
    holocron-export model.pt2 --format onnx --dynamic-batch --report parity.json
    holocron-export --demo --format onnx -o build/demo.onnx --force

MODEL is a TorchScript archive (``torch.jit.save``), a ``torch.export`` archive (``.pt2``), or a whole pickled
module (``torch.save``), which is only loaded with ``--trust-pickle`` because unpickling runs arbitrary code.

Exit status: 0 on success; 1 when the model cannot be loaded, exported or written; 2 on invalid arguments;
3 when verification fails. Every failure prints a one-line reason on stderr and leaves no output file behind.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .errors import DEFAULT_ATOL, DEFAULT_RTOL

__all__ = ["build_parser", "main", "parse_input_shape"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_VERIFICATION_FAILED = 3
_PROG = "holocron-export"


class _OneLineParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one line on stderr (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def parse_input_shape(text: str) -> tuple[int, ...]:
    """Parse an ``--input-shape`` value such as ``1,3,224,224`` into ``(1, 3, 224, 224)``.

    Free of torch, so the command line rejects bad values at once.

    Args:
        text: comma-separated dimensions.

    Returns:
        The dimensions.

    Raises:
        ValueError: empty text, a non-integer entry, or a dimension below 1.
    """
    malformed = f"input shape {text!r} is malformed; expected comma-separated positive integers like 1,3,224,224"
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise ValueError(malformed)
    try:
        dims = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(malformed) from None
    if any(dim < 1 for dim in dims):
        raise ValueError(f"input shape {text!r} has a dimension below 1; every dimension must be >= 1")
    return dims


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        return parse_input_shape(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"tolerance {text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"tolerance {text!r} must be a number >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``holocron-export``."""
    parser = _OneLineParser(
        prog=_PROG,
        description="Export a holocron/PyTorch model to ONNX (holocron custom-op domain with standard-ONNX "
        "fallbacks) or TorchScript, and verify it against eager PyTorch.",
        epilog="Exit status: 0 success, 1 load/export/write failure, 2 invalid arguments, 3 verification failed.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        type=Path,
        metavar="MODEL",
        help="TorchScript archive, torch.export archive (.pt2) or pickled module (needs --trust-pickle); "
        "omitted with --demo",
    )
    parser.add_argument("--demo", action="store_true", help="export the built-in demo model (input 1,16,32,32)")
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("onnx", "torchscript"),
        default="onnx",
        help="output format (default: onnx)",
    )
    parser.add_argument("-o", "--output", type=Path, help="output file (default: MODEL with .onnx or .pt)")
    parser.add_argument(
        "--input-shape",
        dest="input_shapes",
        type=_input_shape,
        action="append",
        default=[],
        metavar="N,C,H,W",
        help="shape of one model input, e.g. 1,3,224,224; repeat for several inputs "
        "(default: the demo's, or the shapes recorded in a .pt2 archive)",
    )
    onnx_group = parser.add_argument_group("ONNX options")
    onnx_group.add_argument(
        "--opset", type=int, help="ONNX opset (default 20; 18 to 23, 18 to 20 with --exporter torchscript)"
    )
    onnx_group.add_argument(
        "--dynamic-batch", action="store_true", help="symbolic batch dimension (verified at batch size 3)"
    )
    onnx_group.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        help="torch exporter (default dynamo; TorchScript models always use torchscript)",
    )
    onnx_group.add_argument(
        "--no-custom-ops",
        dest="custom_ops",
        action="store_false",
        help="standard ONNX ops only: inline the holocron ops' fallback functions",
    )
    check = parser.add_argument_group("verification")
    check.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare with eager PyTorch before writing (default: on)",
    )
    add_criterion_arguments(check)
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    check.add_argument("--report", dest="report_path", type=Path, help="write the verification report as JSON")
    parser.add_argument("--force", action="store_true", help="overwrite existing output and report files")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a pickled MODEL; loading a pickle runs arbitrary code from the file",
    )
    parser.add_argument("--traceback", action="store_true", help="on failure, also print the Python traceback")
    return parser


def add_criterion_arguments(group: argparse._ArgumentGroup) -> None:
    """``--atol``, ``--rtol`` and ``--localize``, shared with ``holocron-verify``."""
    group.add_argument(
        "--atol",
        type=_tolerance,
        help=f"strict element-wise criterion |exported - eager| <= atol + rtol |eager| (default {DEFAULT_ATOL:g} when "
        "only --rtol is given; without both: the float64-referenced criterion)",
    )
    group.add_argument(
        "--rtol", type=_tolerance, help=f"relative tolerance of the element-wise criterion (default {DEFAULT_RTOL:g})"
    )
    group.add_argument(
        "--localize",
        action="store_true",
        help="also compare every module's output with its ONNX value and name the first divergent module",
    )


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.demo == (args.model is not None):
        parser.error("give either MODEL or --demo" if not args.demo else "MODEL and --demo are mutually exclusive")
    if args.output_format == "torchscript":
        onnx_only = {
            "--opset": args.opset is not None,
            "--dynamic-batch": args.dynamic_batch,
            "--exporter": args.exporter is not None,
            "--no-custom-ops": not args.custom_ops,
            "--localize": args.localize,
        }
        given = [flag for flag, present in onnx_only.items() if present]
        if given:
            parser.error(f"{', '.join(given)} only apply to --format onnx")
    if args.report_path is not None and not args.verify:
        parser.error("--report needs verification; drop --no-verify")
    if args.localize and not args.verify:
        parser.error("--localize needs verification; drop --no-verify")


def _quiet_libraries() -> None:
    """Keep stderr for our own messages: the exporters' deprecation warnings and info logs are not actionable."""
    warnings.simplefilter("ignore")
    import torch.onnx  # noqa: F401  (torch configures its loggers on import; quiet them afterwards)

    for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "torch.fx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``holocron-export``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    _quiet_libraries()

    from .errors import ExportError, VerificationFailedError
    from .pipeline import ExportRequest, run_export

    request = ExportRequest(
        model_path=args.model,
        demo=args.demo,
        output_format=args.output_format,
        output=args.output,
        input_shapes=tuple(args.input_shapes),
        opset=args.opset,
        dynamic_batch=args.dynamic_batch,
        exporter=args.exporter,
        custom_ops=args.custom_ops,
        verify=args.verify,
        atol=args.atol,
        rtol=args.rtol,
        seed=args.seed,
        report_path=args.report_path,
        localize=args.localize,
        force=args.force,
        trust_pickle=args.trust_pickle,
    )
    try:
        result = run_export(request)
    except VerificationFailedError as error:
        if error.report is not None:
            print(error.report.format_table())
        return _fail(args, error, EXIT_VERIFICATION_FAILED)
    except (ExportError, ValueError, TypeError, OSError) as error:
        return _fail(args, error, EXIT_FAILURE)
    except Exception as error:  # a bug, still reported in one line; --traceback shows where
        return _fail(args, error, EXIT_FAILURE, prefix=f"internal error ({type(error).__name__}): ")
    if result.report is not None:
        print(result.report.format_table())
    for note in result.notes:
        print(f"{_PROG}: note: {note}", file=sys.stderr)
    print(f"wrote {result.output}" + (f" and report {request.report_path}" if request.report_path else ""))
    return EXIT_OK


def _fail(args: argparse.Namespace, error: BaseException, status: int, prefix: str = "") -> int:
    if args.traceback:
        traceback.print_exception(error)
    text = " ".join(str(error).split()) or type(error).__name__
    print(f"{_PROG}: error: {prefix}{text}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
