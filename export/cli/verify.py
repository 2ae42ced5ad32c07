"""``holocron-verify``: check an existing ONNX or TorchScript artifact against the eager model, for CI parity jobs.

Examples::

    holocron-verify model.pt model.onnx --input-shape 1,3,224,224 --report parity.json --junit parity.xml
    holocron-verify model.pt model.onnx --no-kernels --localize
    holocron-verify model.pt model.onnx --providers CUDAExecutionProvider,CPUExecutionProvider
    holocron-verify model.pt model_scripted.pt --input-shape 1,3,224,224 --localize=best-effort

MODEL is the eager model (a TorchScript archive, a ``torch.export`` archive, or a pickled module with
``--trust-pickle``), ARTIFACT the exported file: a TorchScript archive (a zip file) or an ONNX model (anything else).
The input shape defaults to the ONNX model's when all its input dimensions are fixed, else to the shapes recorded in a
``.pt2`` MODEL. ``--localize`` works with every MODEL kind (a live module's forward hooks, a TorchScript archive's
inlined graph, a ``.pt2`` program's ``nn_module_stack`` metadata); where localization is impossible (a TorchScript
ARTIFACT, an ONNX model without module scopes) it is a usage error, and ``--localize=best-effort`` verifies without it.

Exit status: 0 the artifact matches; 1 MODEL or ARTIFACT cannot be loaded or run; 2 invalid arguments (one line
naming the flag, before anything is loaded); 3 the artifact diverges (the report table says where).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..model.kinds import ArtifactKind, detect_artifact_kind
from .common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_VERIFICATION_FAILED,
    TRUST_PICKLE_HELP,
    OneLineParser,
    Outcome,
    Progress,
    add_criterion_arguments,
    add_input_shape_argument,
    add_run_arguments,
    run_command,
)
from .flags import (
    UsageError,
    providers_type,
    seed_type,
)

__all__ = ["build_parser", "main"]

_PROG = "holocron-verify"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``holocron-verify``."""
    parser = OneLineParser(
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
    parser.add_argument(
        "--providers",
        type=providers_type,
        metavar="NAME[,NAME...]",
        help="onnxruntime execution providers in order of preference, e.g. CUDAExecutionProvider,CPUExecutionProvider; "
        "each must be available (no silent CPU fallback; default: CPU)",
    )
    parser.add_argument("--report", dest="report_path", type=Path, help="write the report as JSON to this file")
    parser.add_argument(
        "--junit",
        dest="junit_path",
        type=Path,
        metavar="FILE",
        help="write the report as JUnit XML to this file (a test case per output and per compared module)",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help=TRUST_PICKLE_HELP,
    )
    add_run_arguments(parser)
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace, artifact: ArtifactKind) -> None:
    if artifact == "torchscript":
        onnx_only = {
            "--no-kernels": args.use_kernels is not None,
            "--localize": args.localize is True,
            "--providers": args.providers is not None,
        }
        given = [flag for flag, present in onnx_only.items() if present]
        if given:
            parser.error(f"{', '.join(given)} only apply to an ONNX ARTIFACT ({str(args.artifact)!r} is TorchScript)")
    if args.providers is not None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        missing = [name for name in args.providers if name not in available]
        if missing:
            parser.error(
                f"--providers: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not available in this "
                f"onnxruntime (available: {', '.join(available)})"
            )
    from ..errors import OutputPathError
    from ..files import check_outputs

    try:
        check_outputs(
            {"--report": args.report_path, "--junit": args.junit_path},
            inputs={"MODEL": args.model, "ARTIFACT": args.artifact},
            overwrite=True,
        )
    except OutputPathError as error:
        parser.error(str(error))


def _run(args: argparse.Namespace, artifact: ArtifactKind, progress: Progress) -> Outcome:
    from ..files import write_bytes_atomically
    from ..parity.api import verify_files
    from ..parity.junit import junit_xml
    from ..parity.recording import LocalizationUnavailableError

    what = " with localization" if args.localize else ""
    progress(f"verifying {args.artifact} against {args.model}{what}")
    try:
        report = verify_files(
            args.model,
            args.artifact,
            args.input_shapes,
            atol=args.atol,
            rtol=args.rtol,
            seed=args.seed,
            use_kernels=args.use_kernels,
            localize=args.localize,
            providers=args.providers,
            trust_pickle=args.trust_pickle,
            artifact_kind=artifact,
        )
    except LocalizationUnavailableError as error:
        raise UsageError(error.cli_message or str(error)) from error
    if args.report_path is not None:
        write_bytes_atomically(args.report_path, (report.to_json() + "\n").encode(), overwrite=True)
    if args.junit_path is not None:
        write_bytes_atomically(args.junit_path, junit_xml(report), overwrite=True)
    print(report.format_table(), flush=True)
    if not report.passed:
        return EXIT_VERIFICATION_FAILED, [f"{_PROG}: error: {report.failure_summary()}"]
    return EXIT_OK, []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``holocron-verify``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    artifact = detect_artifact_kind(args.artifact)  # read once, passed on
    _validate(parser, args, artifact)
    for path, what in ((args.model, "MODEL"), (args.artifact, "ARTIFACT")):
        if not path.is_file():
            print(f"{_PROG}: error: {what} {str(path)!r} is not a file", file=sys.stderr)
            return EXIT_FAILURE
    return run_command(
        _PROG, lambda progress: _run(args, artifact, progress), show_traceback=args.traceback, quiet=args.quiet
    )


if __name__ == "__main__":
    sys.exit(main())
