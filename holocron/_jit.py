"""holocron's own calls of ``torch.jit``'s entry points, without the deprecation warning torch 2.14 added to them.

torch 2.14 deprecates ``torch.jit.script``, ``trace``, ``save`` and ``load`` with a ``FutureWarning`` on every call
(2.13 already says so for ``script`` with a ``DeprecationWarning``, which Python hides by default).
TorchScript is one of holocron's export formats, so that warning, raised by holocron's calls, is not the user's to act
on: :func:`jit_deprecation_silenced` drops exactly that warning (matched by its category and text) around those
calls. The user's own ``torch.jit`` calls keep their warning, and so do other warnings, torch's "not supported in
Python 3.14+" included. Standard library only.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

__all__ = ["jit_deprecation_silenced"]

#: The text of torch's deprecation warnings for ``torch.jit`` functions (``trace`` also warns for ``trace_method``).
JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated\."


@contextlib.contextmanager
def jit_deprecation_silenced() -> Iterator[None]:
    """Within the block, ignore torch's ``FutureWarning`` (or ``DeprecationWarning``) that a ``torch.jit`` function
    (``script``, ``trace``, ``save``, ``load``, and those they call) is deprecated; other warnings are unaffected."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", message=JIT_DEPRECATION, category=category)
        yield
