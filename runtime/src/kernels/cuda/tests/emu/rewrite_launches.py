"""Rewrite CUDA ``kernel<<<grid, block, smem, stream>>>(args)`` launches into ``::emu::launch`` calls (see emu.h).

Usage: ``python3 rewrite_launches.py IN.cu OUT.cpp``. Standard library only.
"""

from __future__ import annotations

import sys


def _match(text: str, at: int, open_ch: str, close_ch: str, step: int) -> int:
    """Index of the bracket balancing the one at ``at``: scanning forward (``step`` 1) from an ``open_ch``, or
    backward (``step`` -1) from a ``close_ch``."""
    first, second = (open_ch, close_ch) if step == 1 else (close_ch, open_ch)
    depth = 0
    stop = len(text) if step == 1 else -1
    for pos in range(at, stop, step):
        if text[pos] == first:
            depth += 1
        elif text[pos] == second:
            depth -= 1
            if depth == 0:
                return pos
    raise ValueError(f"unbalanced {open_ch}{close_ch} {'after' if step == 1 else 'before'} offset {at}")


def _match_back(text: str, end: int, open_ch: str, close_ch: str) -> int:
    """Index of the ``open_ch`` balancing the ``close_ch`` at ``end``."""
    return _match(text, end, open_ch, close_ch, -1)


def _match_forward(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index of the ``close_ch`` balancing the ``open_ch`` at ``start``."""
    return _match(text, start, open_ch, close_ch, 1)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses, brackets and braces."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return parts


def rewrite(text: str) -> str:
    """Source text with every triple-chevron launch replaced."""
    while (chevrons := text.find("<<<")) >= 0:
        start = chevrons - 1
        while text[start].isspace():
            start -= 1
        if text[start] == ">":
            start = _match_back(text, start, "<", ">") - 1
        while start >= 0 and (text[start].isalnum() or text[start] in "_:"):
            start -= 1
        kernel = text[start + 1 : chevrons].strip()
        config_end = text.index(">>>", chevrons)
        grid, block = _split_top_level(text[chevrons + 3 : config_end])[:2]
        args_open = text.index("(", config_end)
        args_close = _match_forward(text, args_open, "(", ")")
        args = text[args_open + 1 : args_close]
        launch = f"::emu::launch(dim3({grid}), dim3({block}), [&] {{ {kernel}({args}); }})"
        text = text[: start + 1] + launch + text[args_close + 1 :]
    return text


def main(argv: list[str]) -> None:
    source, target = argv
    with open(source) as handle:
        text = handle.read()
    with open(target, "w") as handle:
        handle.write(rewrite(text))


if __name__ == "__main__":
    main(sys.argv[1:])
