"""What the command lines share: exit statuses, flag parsers, argument groups, and one-line error handling.

Both ``holocron-export`` (:mod:`~holocron.export.cli.export`) and ``holocron-verify``
(:mod:`~holocron.export.cli.verify`) build their parsers from :class:`OneLineParser` and the argument groups here,
and run their work through :func:`run_command`: file descriptor 2 is captured while it runs (torch's C++ logging and
onnx's prints stay off the terminal), and every failure becomes an exit status and one line on stderr, in the CLI's
language (flags, not Python argument names):

* 0 success; 1 a file cannot be loaded, exported, run or written; 2 invalid arguments (:class:`UsageError`, found
  before any work); 3 verification failed;
* ``--traceback`` also prints the Python traceback and the libraries' captured logs.

The flag parsers are free of torch, so the command line rejects bad values at once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import NoReturn

from ..errors import ExportError, InputSizeError, OutputPathError
from ..parity.criteria import DEFAULT_ATOL, DEFAULT_RTOL
from .flags import UsageError, input_shape_type, localize_type, tolerance_type

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_VERIFICATION_FAILED",
    "TRUST_PICKLE_HELP",
    "OneLineParser",
    "add_criterion_arguments",
    "add_input_shape_argument",
    "add_run_arguments",
    "captured_stderr",
    "one_line",
    "quiet_libraries",
    "run_command",
]

EXIT_OK = 0


EXIT_FAILURE = 1


EXIT_USAGE = 2


EXIT_VERIFICATION_FAILED = 3


#: ``--trust-pickle``'s help, the same in both commands: the trust model as implemented (holocron.export.model).
TRUST_PICKLE_HELP = (
    "trust the model files to run code. Without it: a pickled module is refused; every pickle in an archive is "
    "read by torch's restricted (weights-only) unpickler only; an archive holding what runs while it loads "
    "(TorchScript __setstate__, TorchBind objects, AOTInductor code, opaque constants, guard code, shape "
    "expressions beyond arithmetic) or what cannot be checked is refused; and a TorchScript or .pt2 graph calling "
    "an op outside the side-effect-free aten/prim/prims/holocron ops (e.g. aten::from_file, aten::save, print) is "
    "refused before it runs"
)


class OneLineParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one line on stderr (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


@contextlib.contextmanager
def captured_stderr() -> Iterator[CapturedStderr]:
    """Send file descriptor 2 (Python's and C++'s writes alike) to a temporary file while the block runs.

    Torch's C++ logging (``E1129 ...`` lines) and onnx's prints land there, not on the terminal; the yielded object's
    ``text`` holds them on exit, and its :meth:`~CapturedStderr.write_through` still reaches the real stderr.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    captured = CapturedStderr(saved)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace")


class CapturedStderr:
    """What :func:`captured_stderr` caught (``text``, on exit), and a way around it for our own progress lines."""

    def __init__(self, real_fd: int) -> None:
        self._real_fd = real_fd
        self.text = ""

    def write_through(self, line: str) -> None:
        """Write ``line`` (and a newline) to the real stderr at once."""
        os.write(self._real_fd, (line + "\n").encode(errors="replace"))


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
        nargs="?",
        type=localize_type,
        const=True,
        default=False,
        metavar="best-effort",
        help="also compare every module's output with its ONNX value and name the first divergent module; a MODEL "
        "or ARTIFACT that cannot be localized is a usage error unless --localize=best-effort (then the report says "
        "why)",
    )


def quiet_libraries() -> None:
    """Keep stderr for our own messages: the exporters' deprecation warnings and info logs are not actionable."""
    warnings.simplefilter("ignore")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    import torch.onnx  # noqa: F401  (torch configures its loggers on import; quiet them afterwards)

    for name in ("torch", "torch.onnx", "torch.export", "torch._export", "onnxscript", "torch.fx", "onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def one_line(error: BaseException) -> str:
    text = getattr(error, "cli_message", None) or str(error)
    return " ".join(text.split()) or type(error).__name__


#: What a command's work returns: its exit status and the lines it leaves for stderr (notes, a failure summary).
Outcome = tuple[int, list[str]]
#: Reports one stage of long work (``loading model.pt``); the work receives one.
Progress = Callable[[str], None]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quiet``, ``--traceback`` and ``--version``, shared by the command lines."""
    from holocron import __version__

    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr (errors still print)")
    parser.add_argument(
        "--traceback", action="store_true", help="on failure, also print the Python traceback and the libraries' logs"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def run_command(prog: str, work: Callable[[Progress], Outcome], *, show_traceback: bool, quiet: bool) -> int:
    """Run ``work`` with file descriptor 2 captured; return its exit status, printing its lines on stderr.

    Args:
        prog: the command's name, which starts each line (``holocron-export: error: ...``).
        work: everything after parsing; it raises on failure, and reports its stages through the callable it gets.
        show_traceback: on failure, also print the traceback and the captured library logs (``--traceback``).
        quiet: drop the stage lines (``--quiet``); they are ``PROG: [  1.2s] STAGE`` on stderr otherwise.

    Returns:
        The exit status: ``work``'s own, or the one its exception maps to (see the module docstring).
    """
    outcome: list[tuple[int, BaseException | None, list[str]]] = []
    start = time.monotonic()
    with captured_stderr() as library_log:

        def progress(stage: str) -> None:
            if not quiet:
                library_log.write_through(f"{prog}: [{time.monotonic() - start:5.1f}s] {stage}")

        outcome.append(_guarded(prog, lambda: work(progress)))
    status, error, lines = outcome[0]
    if error is not None and show_traceback:
        traceback.print_exception(error)
        sys.stderr.write(library_log.text)
    for line in lines:
        print(line, file=sys.stderr)
    return status


def _guarded(prog: str, work: Callable[[], Outcome]) -> tuple[int, BaseException | None, list[str]]:
    from ..parity.report import VerificationFailedError

    try:
        quiet_libraries()
        status, lines = work()
    except (UsageError, OutputPathError, InputSizeError) as error:
        return EXIT_USAGE, error, [f"{prog}: error: {one_line(error)} (see --help)"]
    except VerificationFailedError as error:
        if error.report is not None:
            print(error.report.format_table(), flush=True)
        return EXIT_VERIFICATION_FAILED, error, [f"{prog}: error: {one_line(error)}"]
    except (ExportError, ValueError, TypeError, OSError) as error:
        return EXIT_FAILURE, error, [f"{prog}: error: {one_line(error)}"]
    except Exception as error:  # a bug, still reported in one line; --traceback shows where
        return EXIT_FAILURE, error, [f"{prog}: error: internal error ({type(error).__name__}): {one_line(error)}"]
    return status, None, lines
