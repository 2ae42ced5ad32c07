"""``holocron-export``: export a model file (or the built-in demo) to ONNX or TorchScript, verified against eager.

Examples::

    holocron-export model.pt --format onnx -o model.onnx --input-shape 1,16,16,16
    holocron-export model.pt2 --format onnx --dynamic-batch --report parity.json
    holocron-export --demo --format onnx -o build/demo.onnx --force

MODEL is a TorchScript archive (``torch.jit.save``), a ``torch.export`` archive (``.pt2``), or a whole pickled
module (``torch.save``), which is only loaded with ``--trust-pickle`` because unpickling runs arbitrary code.

Every archive is checked before torch reads it: a pickle inside that names anything but tensors, storages, dtypes
and plain containers (code to run) refuses the file unless ``--trust-pickle``.

Outputs (``-o``, ``--report``) must be new paths or regular files, distinct from each other and from MODEL; an
existing one is replaced only with ``--force``, and a symbolic link is then replaced itself, never written through.

Exit status: 0 on success; 1 when the model cannot be loaded, exported or written; 2 on invalid arguments (found
before the model is loaded); 3 when verification fails. Every failure prints a one-line reason on stderr (torch's and
onnx's own log lines are captured; ``--traceback`` shows them) and leaves no output file behind.

The validation helpers are shared with other console scripts: :func:`parse_input_shape` / :func:`input_shape_type`,
:func:`parse_tolerance` / :func:`tolerance_type`, :func:`parse_seed` / :func:`seed_type`, :func:`opset_type`,
:func:`check_opset_for_exporter`, :func:`check_output_paths` (raising :class:`UsageError`), and
:func:`captured_stderr`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from .errors import DEFAULT_ATOL, DEFAULT_RTOL

__all__ = [
    "UsageError",
    "build_parser",
    "captured_stderr",
    "check_opset_for_exporter",
    "check_output_paths",
    "input_shape_type",
    "main",
    "opset_type",
    "parse_input_shape",
    "parse_seed",
    "parse_tolerance",
    "seed_type",
    "tolerance_type",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_VERIFICATION_FAILED = 3
_PROG = "holocron-export"
#: Largest dimension, and largest element count, of an ``--input-shape`` (int32 indexing in the exporters/runtime).
MAX_INPUT_ELEMENTS = 2**31 - 1
#: Largest ``--seed`` torch's generator takes.
MAX_SEED = 2**64 - 1
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class UsageError(ValueError):
    """An invalid command line, found before the model is loaded: exit status 2, one line naming the flag."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one line on stderr (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _ascii_int(text: str) -> int | None:
    """``text`` as a non-negative integer if it is ASCII digits only (no sign, exponent, underscore or other script)."""
    stripped = text.strip()
    return int(stripped) if _ASCII_DIGITS.fullmatch(stripped) else None


def parse_input_shape(text: str) -> tuple[int, ...]:
    """Parse an ``--input-shape`` value such as ``1,3,224,224`` into ``(1, 3, 224, 224)``.

    Free of torch, so the command line rejects bad values at once. Entries are ASCII digits only: ``1e20``, ``+3``,
    ``1_000`` and digits of other scripts are refused.

    Args:
        text: comma-separated dimensions.

    Returns:
        The dimensions.

    Raises:
        ValueError: empty text, an entry that is not ASCII digits, a dimension below 1, or a shape of more than
            ``MAX_INPUT_ELEMENTS`` elements.
    """
    malformed = f"input shape {text!r} is malformed; expected comma-separated positive integers like 1,3,224,224"
    parts = text.split(",")
    values = [_ascii_int(part) for part in parts]
    if not text.strip() or any(value is None for value in values):
        raise ValueError(malformed)
    dims = tuple(value for value in values if value is not None)
    if any(dim < 1 for dim in dims):
        raise ValueError(f"input shape {text!r} has a dimension below 1; every dimension must be >= 1")
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise ValueError(
            f"input shape {text!r} has {math.prod(dims)} elements; at most {MAX_INPUT_ELEMENTS} are supported"
        )
    return dims


def parse_tolerance(text: str) -> float:
    """Parse an ``--atol``/``--rtol`` value: a finite number >= 0 (``inf`` and ``nan`` would check nothing).

    Raises:
        ValueError: not a number, negative, infinite or NaN.
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"tolerance {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance {text!r} must be a finite number >= 0")
    return value


def parse_seed(text: str) -> int:
    """Parse a ``--seed`` value: ASCII digits, from 0 to ``MAX_SEED``.

    Raises:
        ValueError: anything else (``1e23``, a sign, a value torch's generator cannot take).
    """
    value = _ascii_int(text)
    if value is None or value > MAX_SEED:
        raise ValueError(f"seed {text!r} must be an integer from 0 to {MAX_SEED}")
    return value


def parse_positive_int(text: str) -> int:
    """Parse a count such as ``--instances``: ASCII digits, from 1 to 2**31 - 1.

    Raises:
        ValueError: anything else.
    """
    value = _ascii_int(text)
    if value is None or not 1 <= value < 2**31:
        raise ValueError(f"{text!r} must be an integer from 1 to {2**31 - 1}")
    return value


def _argparse_type(parse, name: str):  # type: ignore[no-untyped-def]
    def convert(text: str):  # type: ignore[no-untyped-def]
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


#: argparse ``type=`` converters: a bad value is a one-line usage error naming the flag (exit 2).
input_shape_type = _argparse_type(parse_input_shape, "input_shape_type")
tolerance_type = _argparse_type(parse_tolerance, "tolerance_type")
seed_type = _argparse_type(parse_seed, "seed_type")
positive_int_type = _argparse_type(parse_positive_int, "positive_int_type")


def opset_type(text: str) -> int:
    """argparse ``type=`` for ``--opset``: an integer from ``FIRST_OPSET`` (18) to ``LAST_OPSET`` (23)."""
    from holocron.ops.contract import FIRST_OPSET, LAST_OPSET

    value = _ascii_int(text)
    if value is None or not FIRST_OPSET <= value <= LAST_OPSET:
        raise argparse.ArgumentTypeError(
            f"opset {text!r} is not supported; expected {FIRST_OPSET} to {LAST_OPSET} "
            "(to 20 with the TorchScript exporter)"
        )
    return value


def check_opset_for_exporter(opset: int | None, exporter: str, reason: str = "") -> None:
    """Check ``--opset`` against the exporter that will run.

    Args:
        opset: the ``--opset`` value, if given.
        exporter: ``dynamo`` or ``torchscript``.
        reason: why that exporter runs, appended to the message (e.g. ``a TorchScript MODEL always uses it``).

    Raises:
        UsageError: the TorchScript exporter cannot produce ``opset``.
    """
    from .onnx_export import TORCHSCRIPT_MAX_OPSET

    if opset is not None and exporter == "torchscript" and opset > TORCHSCRIPT_MAX_OPSET:
        why = f" ({reason})" if reason else ""
        raise UsageError(
            f"--opset {opset} is above {TORCHSCRIPT_MAX_OPSET}, the newest opset of the TorchScript exporter{why}"
        )


def check_output_paths(outputs: dict[str, Path | None], inputs: dict[str, Path | None], *, force: bool) -> None:
    """Check output flags before any work: distinct from each other and the inputs, regular files or new paths.

    Args:
        outputs: flag (``-o``, ``--report``) -> path; None entries are skipped.
        inputs: flag or name (``MODEL``) -> path of a file read; None entries are skipped.
        force: whether existing outputs may be replaced (``--force``).

    Raises:
        UsageError: two of the paths are the same file (links and hard links included), or an output is a directory,
            device node, FIFO or socket (even with ``force``).
        OutputExistsError: an output exists and ``force`` is False (its ``cli_message`` names ``--force``).
    """
    from .files import check_distinct, check_writable

    try:
        check_distinct({**inputs, **outputs})
    except ValueError as error:
        raise UsageError(str(error)) from None
    for flag, path in outputs.items():
        if path is None:
            continue
        try:
            check_writable(path, overwrite=force)
        except ValueError as error:
            raise UsageError(f"{flag}: {error}") from None


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Send file descriptor 2 (Python's and C++'s writes alike) to a temporary file; yield a list that receives
    its text on exit. Torch's C++ logging (``E1129 ...`` lines) and onnx's prints land there, not on the terminal.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


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
    parser.add_argument(
        "--demo", action="store_true", help="export the built-in demo model (AdderNet ResNet-20, input 1,3,32,32)"
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("onnx", "torchscript", "triton"),
        default="onnx",
        help="output format (default: onnx); triton writes the ONNX model into a Triton model repository",
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
        "--model-name", help="model name and folder in the repository (default: MODEL's file name, or holocron-demo)"
    )
    triton.add_argument("--model-version", type=positive_int_type, help="version folder of the model, >= 1 (default 1)")
    triton.add_argument(
        "--max-batch-size",
        type=positive_int_type,
        help="largest batch Triton forms (turns on dynamic batching; exports with a dynamic batch and verifies at "
        "this batch size); default: no batching",
    )
    triton.add_argument("--instance-kind", choices=("gpu", "cpu"), help="where model instances run (default gpu)")
    triton.add_argument("--instances", type=positive_int_type, help="model instances per device, >= 1 (default 1)")
    triton.add_argument(
        "--op-library-path",
        help="holocron's op library as the server opens it (default /models/NAME/libholocron_ort.so: the "
        "repository mounted at /models)",
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
        help="allow a pickled MODEL, or an archive whose pickles hold more than tensors; loading such a pickle runs "
        "arbitrary code from the file",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="on failure, also print the Python traceback and the libraries' logs"
    )
    return parser


def add_input_shape_argument(parser: argparse.ArgumentParser, default_text: str) -> None:
    """``--input-shape N,C,H,W`` (repeatable, one per model input), shared with ``holocron-verify``.

    Args:
        parser: the parser to extend.
        default_text: what is used when the flag is absent, for the help text.
    """
    parser.add_argument(
        "--input-shape",
        dest="input_shapes",
        type=input_shape_type,
        action="append",
        default=[],
        metavar="N,C,H,W",
        help=f"shape of one model input, e.g. 1,3,224,224; repeat for several inputs (default: {default_text})",
    )


def add_criterion_arguments(group: argparse._ArgumentGroup) -> None:
    """``--atol``, ``--rtol`` and ``--localize``, shared with ``holocron-verify``."""
    group.add_argument(
        "--atol",
        type=tolerance_type,
        help=f"strict element-wise criterion |exported - eager| <= atol + rtol |eager| (default {DEFAULT_ATOL:g} when "
        "only --rtol is given; without both: the float64-referenced criterion)",
    )
    group.add_argument(
        "--rtol",
        type=tolerance_type,
        help=f"relative tolerance of the element-wise criterion (default {DEFAULT_RTOL:g})",
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
    elif args.exporter == "torchscript":
        try:
            check_opset_for_exporter(args.opset, "torchscript")
        except UsageError as error:
            parser.error(str(error))
    if args.output_format != "triton":
        triton_only = [flag for flag, dest in _TRITON_FLAGS.items() if getattr(args, dest) is not None]
        if triton_only:
            parser.error(f"{', '.join(triton_only)} only apply to --format triton")
    elif args.model_name is not None and not _valid_model_name(args.model_name):
        parser.error(
            f"--model-name must be letters, digits, '_', '.' or '-', not starting with '.' or '-'; got "
            f"{args.model_name!r}"
        )
    elif args.op_library_path is not None and not args.op_library_path.strip():
        parser.error("--op-library-path must not be empty")
    if args.report_path is not None and not args.verify:
        parser.error("--report needs verification; drop --no-verify")
    if args.localize and not args.verify:
        parser.error("--localize needs verification; drop --no-verify")


_TRITON_FLAGS = {
    "--model-name": "model_name",
    "--model-version": "model_version",
    "--max-batch-size": "max_batch_size",
    "--instance-kind": "instance_kind",
    "--instances": "instances",
    "--op-library-path": "op_library_path",
}


def _valid_model_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", name) is not None


def _default_model_name(model: Path | None) -> str:
    """MODEL's file name as a Triton model name (characters Triton and file systems dislike become ``_``)."""
    if model is None:
        return "holocron-demo"
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", model.stem).lstrip(".-") or "model"


_KIND_NAMES = {"torchscript": "a TorchScript archive", "pickle": "a pickled module", "torch_export": "a .pt2 archive"}


def _validate_model_flags(args: argparse.Namespace) -> None:
    """Checks that depend on what kind of file MODEL is (read from its first bytes and zip listing, not loaded).

    Raises:
        UsageError: flags that cannot work with this MODEL.
        ModelLoadError: MODEL is missing, not a regular file, or of no known kind.
    """
    if args.model is None:
        return
    from .model_loading import detect_model_kind, static_batch_inputs

    kind = detect_model_kind(args.model)
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


def _quiet_libraries() -> None:
    """Keep stderr for our own messages: the exporters' deprecation warnings and info logs are not actionable."""
    warnings.simplefilter("ignore")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    import torch.onnx  # noqa: F401  (torch configures its loggers on import; quiet them afterwards)

    for name in ("torch", "torch.onnx", "torch.export", "torch._export", "onnxscript", "torch.fx", "onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``holocron-export``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    outcome: list[tuple[int, BaseException | None, list[str]]] = []
    with captured_stderr() as library_log:
        outcome.append(_run(args))
    status, error, messages = outcome[0]
    if error is not None and args.traceback:
        traceback.print_exception(error)
        sys.stderr.write(library_log[0])
    for message in messages:
        print(message, file=sys.stderr)
    return status


def _run(args: argparse.Namespace) -> tuple[int, BaseException | None, list[str]]:
    """Everything after parsing, with stderr captured: (exit status, the failure if any, lines for stderr)."""
    try:
        _quiet_libraries()
        from .errors import ExportError, OutputExistsError, VerificationFailedError
        from .pipeline import ExportRequest, default_output_path, run_export

        same_names = {name: getattr(args, name) for name in _REQUEST_FIELDS}
        request = ExportRequest(
            model_path=args.model, input_shapes=tuple(args.input_shapes), triton=_triton_options(args), **same_names
        )
        output = args.output or default_output_path(request)
        if request.triton is None:
            check_output_paths({"-o": output, "--report": args.report_path}, {"MODEL": args.model}, force=args.force)
        else:
            check_output_paths({"--report": args.report_path}, {"MODEL": args.model}, force=args.force)
            _check_repository(output, request.triton.model_name, force=args.force)
        _validate_model_flags(args)
    except UsageError as error:
        return EXIT_USAGE, error, [f"{_PROG}: error: {_one_line(error)} (see --help)"]
    except (ExportError, OutputExistsError, OSError) as error:
        return EXIT_FAILURE, error, [_error_line(error)]
    try:
        result = run_export(request)
    except VerificationFailedError as error:
        if error.report is not None:
            print(error.report.format_table(), flush=True)
        return EXIT_VERIFICATION_FAILED, error, [_error_line(error)]
    except (ExportError, ValueError, TypeError, OSError) as error:
        return EXIT_FAILURE, error, [_error_line(error)]
    except Exception as error:  # a bug, still reported in one line; --traceback shows where
        return EXIT_FAILURE, error, [_error_line(error, prefix=f"internal error ({type(error).__name__}): ")]
    if result.report is not None:
        print(result.report.format_table())
    print(f"wrote {result.output}" + (f" and report {request.report_path}" if request.report_path else ""), flush=True)
    return EXIT_OK, None, [f"{_PROG}: note: {note}" for note in result.notes]


#: ExportRequest fields whose flag has the same ``dest`` name.
_REQUEST_FIELDS = (
    "demo", "output_format", "output", "opset", "dynamic_batch", "exporter", "custom_ops", "verify", "atol", "rtol",
    "seed", "report_path", "localize", "force", "trust_pickle",
)  # fmt: skip


def _triton_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The repository model's settings from the Triton flags (None unless --format triton)."""
    if args.output_format != "triton":
        return None
    from .triton import TritonOptions

    return TritonOptions(
        model_name=args.model_name or _default_model_name(args.model),
        model_version=args.model_version or 1,
        max_batch_size=args.max_batch_size or 0,
        instance_kind=args.instance_kind or "gpu",
        instances=args.instances or 1,
        op_library_path=args.op_library_path,
    )


def _check_repository(repository: Path, model_name: str, *, force: bool) -> None:
    """-o names a folder (or a new path) and the model may be written there (existing: only with --force)."""
    from .triton import check_repository_slot

    try:
        check_repository_slot(repository, model_name, overwrite=force)
    except ValueError as error:
        raise UsageError(f"-o: {error}") from error


def _one_line(error: BaseException) -> str:
    text = getattr(error, "cli_message", None) or str(error)
    return " ".join(text.split()) or type(error).__name__


def _error_line(error: BaseException, prefix: str = "") -> str:
    return f"{_PROG}: error: {prefix}{_one_line(error)}"


if __name__ == "__main__":
    sys.exit(main())
