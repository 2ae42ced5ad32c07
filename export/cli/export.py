"""``holocron-export``: export a model file (or the built-in demo) to ONNX or TorchScript, verified against eager.

Examples::

    holocron-export model.pt --format onnx -o model.onnx --input-shape 1,16,16,16
    holocron-export model.pt2 --format onnx --dynamic-batch --report parity.json
    holocron-export --demo --format onnx -o build/demo.onnx --force
    holocron-export model.pt --format triton --backend pytorch -o repo --input-shape 1,3,64,64

MODEL is a TorchScript archive (``torch.jit.save``), a ``torch.export`` archive (``.pt2``), or a whole pickled
module (``torch.save``), which is only loaded with ``--trust-pickle`` because unpickling runs arbitrary code.

Without ``--trust-pickle`` nothing from MODEL runs: its pickles are read by torch's restricted unpickler, an
archive holding code that runs at load is refused, and its graphs may call side-effect-free ops only (see
:mod:`holocron.export.model.archives` and :mod:`holocron.export.model.graphs`).

Outputs (``-o``, ``--report``) must be new paths or regular files, distinct from each other and from MODEL; an
existing one is replaced only with ``--force``, and a symbolic link is then replaced itself, never written through.

Exit status: 0 on success; 1 when the model cannot be loaded, exported or written; 2 on invalid arguments (found
before the model is loaded); 3 when verification fails. Every failure prints a one-line reason on stderr (torch's and
onnx's own log lines are captured; ``--traceback`` shows them) and leaves no output file behind.

The flag parsers and the error handling are those of :mod:`~holocron.export.cli.common`; the work is
:func:`holocron.export.pipeline.run_export`, which checks the output paths and reads MODEL's kind once
(:func:`~holocron.export.pipeline.prepare_export`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ..model.kinds import ModelKind, static_batch_inputs
from ..triton import DEFAULT_SERVER_REPOSITORY, TritonOptions
from .common import (
    EXIT_OK,
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
    check_opset_for_exporter,
    opset_type,
    positive_int_type,
    seed_type,
)

__all__ = ["build_parser", "main"]

_PROG = "holocron-export"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``holocron-export``."""
    parser = OneLineParser(
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
    parser.add_argument(
        "--demo", action="store_true", help="export the built-in demo model (AdderNet ResNet-20, input 1,3,32,32)"
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("onnx", "torchscript", "triton"),
        default="onnx",
        help="output format (default: onnx); triton writes the model into a Triton model repository (ONNX, or "
        "TorchScript with --backend pytorch)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file (default: MODEL with .onnx or .pt); a new path or a regular file, never MODEL itself; "
        "with --format triton, the model repository folder (default: model_repository)",
    )
    add_input_shape_argument(
        parser,
        "the demo's, or the shapes recorded in a .pt2 archive; required for other MODEL kinds",
    )
    onnx_group = parser.add_argument_group("ONNX options")
    onnx_group.add_argument(
        "--opset", type=opset_type, help="ONNX opset (default 20; 18 to 23, 18 to 20 with --exporter torchscript)"
    )
    onnx_group.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="symbolic batch dimension (verified at batch size 3); a .pt2 MODEL must have been exported with one",
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
    triton = parser.add_argument_group("Triton options (--format triton)")
    triton.add_argument(
        "--backend",
        choices=("onnxruntime", "pytorch"),
        help="Triton backend that serves the model (default onnxruntime: model.onnx and libholocron_ort.so; pytorch: "
        "a TorchScript model.pt and libholocron_torch.so, which the server loads with LD_PRELOAD)",
    )
    triton.add_argument(
        "--model-name", help="model name and folder in the repository (default: MODEL's file name, or holocron-demo)"
    )
    triton.add_argument("--model-version", type=positive_int_type, help="version folder of the model, >= 1 (default 1)")
    triton.add_argument(
        "--max-batch-size",
        type=positive_int_type,
        help="largest batch Triton forms (turns on dynamic batching; exports with a dynamic batch and verifies at "
        "this batch size); default: no batching",
    )
    triton.add_argument(
        "--instance-kind",
        choices=("auto", "gpu", "cpu"),
        help="where model instances run (default auto: the server's GPUs where it has some, else its CPU)",
    )
    triton.add_argument("--instances", type=positive_int_type, help="model instances per device, >= 1 (default 1)")
    triton.add_argument(
        "--server-repository",
        help="where the repository is mounted in the serving container (default /models; KServe: /mnt/models); "
        "the op library path in config.pbtxt starts there",
    )
    triton.add_argument(
        "--op-library-path",
        help="holocron's op library as the server opens it (default SERVER_REPOSITORY/NAME/ and the library's file "
        "name: libholocron_ort.so, or libholocron_torch.so with --backend pytorch)",
    )
    triton.add_argument(
        "--no-op-library",
        dest="op_library",
        action="store_const",
        const=False,
        default=None,
        help="write no op library and no model_operations: the holocron nodes run on their standard-ONNX fallback "
        "functions, for Triton releases before 25.03 (onnxruntime older than 1.21 refuses the library)",
    )
    check = parser.add_argument_group("verification")
    check.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare with eager PyTorch before writing (default: on)",
    )
    add_criterion_arguments(check)
    check.add_argument("--seed", type=seed_type, default=0, help="seed of the random inputs (default 0)")
    check.add_argument(
        "--report",
        dest="report_path",
        type=Path,
        help="write the verification report as JSON (a path other than MODEL and -o)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing output and report files; only regular files are replaced, and a symbolic link is "
        "replaced itself, never written through",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help=TRUST_PICKLE_HELP,
    )
    add_run_arguments(parser)
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.demo == (args.model is not None):
        parser.error("give either MODEL or --demo" if not args.demo else "MODEL and --demo are mutually exclusive")
    if args.output_format == "torchscript" or args.backend == "pytorch":
        onnx_only = {
            "--opset": args.opset is not None,
            "--dynamic-batch": args.dynamic_batch,
            "--exporter": args.exporter is not None,
            "--no-custom-ops": not args.custom_ops,
            "--localize": args.localize,
        }
        given = [flag for flag, present in onnx_only.items() if present]
        if given:
            what = "--format torchscript" if args.output_format == "torchscript" else "--backend pytorch (TorchScript)"
            verb = "applies" if len(given) == 1 else "apply"
            parser.error(f"{', '.join(given)} {verb} only to ONNX exports, not to {what}")
    elif args.exporter == "torchscript":
        try:
            check_opset_for_exporter(args.opset, "torchscript")
        except UsageError as error:
            parser.error(str(error))
    if args.output_format != "triton":
        triton_only = [flag for flag, dest in _TRITON_FLAGS.items() if getattr(args, dest) is not None]
        if triton_only:
            verb = "applies" if len(triton_only) == 1 else "apply"
            parser.error(f"{', '.join(triton_only)} {verb} only to --format triton")
    elif args.model_name is not None and not _valid_model_name(args.model_name):
        parser.error(
            f"--model-name must be letters, digits, '_', '.' or '-', not starting with '.' or '-'; got "
            f"{args.model_name!r}"
        )
    elif args.op_library_path is not None and not args.op_library_path.strip():
        parser.error("--op-library-path must not be empty")
    elif args.server_repository is not None and not args.server_repository.startswith("/"):
        parser.error(f"--server-repository must be an absolute path in the container; got {args.server_repository!r}")
    elif args.op_library is False and args.op_library_path is not None:
        parser.error("--op-library-path and --no-op-library are mutually exclusive")
    elif args.op_library is False and args.backend == "pytorch":
        parser.error(
            "--no-op-library applies to --backend onnxruntime only: TorchScript has no fallback for holocron ops"
        )
    if args.report_path is not None and not args.verify:
        parser.error("--report needs verification; drop --no-verify")
    if args.localize and not args.verify:
        parser.error("--localize needs verification; drop --no-verify")


_TRITON_FLAGS = {
    "--backend": "backend",
    "--model-name": "model_name",
    "--model-version": "model_version",
    "--max-batch-size": "max_batch_size",
    "--instance-kind": "instance_kind",
    "--instances": "instances",
    "--op-library-path": "op_library_path",
    "--server-repository": "server_repository",
    "--no-op-library": "op_library",
}


def _valid_model_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", name) is not None


def _default_model_name(model: Path | None) -> str:
    """MODEL's file name as a Triton model name (characters Triton and file systems dislike become ``_``)."""
    if model is None:
        return "holocron-demo"
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", model.stem).lstrip(".-") or "model"


_KIND_NAMES = {"torchscript": "a TorchScript archive", "pickle": "a pickled module", "torch_export": "a .pt2 archive"}


def _validate_model_flags(args: argparse.Namespace, kind: ModelKind | None) -> None:
    """Checks that depend on what kind of file MODEL is (read once, from its first bytes and zip listing).

    Raises:
        UsageError: flags that cannot work with this MODEL.
    """
    if kind is None:
        return
    if kind in ("torchscript", "pickle") and not args.input_shapes:
        raise UsageError(
            f"--input-shape is required: MODEL is {_KIND_NAMES[kind]}, which records no input shape "
            "(e.g. --input-shape 1,3,224,224)"
        )
    if args.output_format not in ("onnx", "triton"):
        return
    if kind == "torchscript":
        check_opset_for_exporter(args.opset, "torchscript", "a TorchScript MODEL always uses it")
    if kind == "torch_export" and args.exporter == "torchscript":
        raise UsageError(
            "--exporter torchscript cannot export a .pt2 archive (its module's mode is fixed); use --exporter dynamo"
        )
    if kind == "torch_export" and (args.dynamic_batch or args.max_batch_size is not None):
        fixed = static_batch_inputs(args.model)
        flag = "--dynamic-batch" if args.dynamic_batch else "--max-batch-size"
        if fixed:
            raise UsageError(
                f"{flag}: MODEL was exported with a fixed batch size (input(s) {', '.join(fixed)}); save it "
                "with a dynamic batch dimension: torch.export.save(torch.export.export(model, args, "
                "dynamic_shapes=({0: torch.export.Dim('batch')},)), path), or drop --dynamic-batch"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``holocron-export``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    return run_command(_PROG, lambda progress: _run(args, progress), show_traceback=args.traceback, quiet=args.quiet)


#: Request fields -> the flag that sets them, for messages in the command line's language.
_CLI_NAMES = {"output": "-o", "report_path": "--report", "model_path": "MODEL"}


def _run(args: argparse.Namespace, progress: Progress) -> Outcome:
    """Everything after parsing (stderr is captured): check, then export; the exit status and lines for stderr."""
    from ..pipeline import ExportRequest, prepare_export, run_export

    same_names = {name: getattr(args, name) for name in _REQUEST_FIELDS}
    request = ExportRequest(
        model_path=args.model, input_shapes=tuple(args.input_shapes), triton=_triton_options(args), **same_names
    )
    plan = prepare_export(request, cli_names=_CLI_NAMES)  # output paths and MODEL's kind, once, before any work
    _validate_model_flags(args, plan.model_kind)
    result = run_export(plan, progress=progress)
    for report in result.reports:
        print(report.format_table())
    print(f"wrote {result.output}" + (f" and report {request.report_path}" if request.report_path else ""), flush=True)
    return EXIT_OK, [f"{_PROG}: note: {note}" for note in result.notes]


#: ExportRequest fields whose flag has the same ``dest`` name.
_REQUEST_FIELDS = (
    "demo", "output_format", "output", "opset", "dynamic_batch", "exporter", "custom_ops", "verify", "atol", "rtol",
    "seed", "report_path", "localize", "force", "trust_pickle",
)  # fmt: skip


def _triton_options(args: argparse.Namespace) -> TritonOptions | None:
    """The repository model's settings from the Triton flags (None unless --format triton)."""
    if args.output_format != "triton":
        return None

    return TritonOptions(
        model_name=args.model_name or _default_model_name(args.model),
        model_version=args.model_version or 1,
        max_batch_size=args.max_batch_size or 0,
        instance_kind=args.instance_kind or "auto",
        instances=args.instances or 1,
        op_library_path=args.op_library_path,
        server_repository=args.server_repository or DEFAULT_SERVER_REPOSITORY,
        op_library=args.op_library is not False,
        backend=args.backend or "onnxruntime",
    )


if __name__ == "__main__":
    sys.exit(main())
