"""Cheap terminal styling for output that can run to 100k lines (rich markup costs ~0.4 ms/line)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


class Styler:
    """Wraps text in ANSI codes when writing to a colour terminal, and does nothing otherwise."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        forced = os.environ.get("FORCE_COLOR") not in (None, "", "0")
        self.enabled = forced or (stream.isatty() and "NO_COLOR" not in os.environ)

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        return f"\x1b[{';'.join(CODES[s] for s in styles)}m{text}\x1b[0m"

    def write_lines(self, lines: list[str]) -> None:
        self.stream.write("\n".join(lines) + "\n" if lines else "")
