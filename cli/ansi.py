"""Cheap terminal styling for output that can run to 100k lines (rich markup costs ~0.4 ms/line),
and `terminal_safe` for text an agent wrote (mc logs)."""

from __future__ import annotations

import os
import re
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


# --- text from agents, made safe for a terminal -----------------------------------------------

# Escape sequences an agent may print: CSI (colours, cursor moves, `\x1b[2J`), the string
# commands OSC/DCS/SOS/PM/APC up to their terminator (OSC 8 hyperlinks, OSC 52 clipboard
# writes, window titles) and the two-character escapes. 8-bit (C1) forms included.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]{0,65536}(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]"
)
# Every other C0/C1 control (and DEL) but newline and tab: shown escaped, never sent as is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\r": "\\r", "\x1b": "\\e"}


def _escaped(found: re.Match[str]) -> str:
    char = found.group()
    return _NAMED.get(char, f"\\x{ord(char):02x}")


def terminal_safe(text: str) -> str:
    """`text` with escape sequences removed (the words of an OSC-8 link stay, the link goes)
    and every other control character but \\n and \\t shown escaped (`\\r`, `\\e`, `\\x07`),
    so an agent's output cannot recolour, move, retitle or hyperlink the user's terminal."""
    return _CONTROL.sub(_escaped, _SEQUENCE.sub("", text))
