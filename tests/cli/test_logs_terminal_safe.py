"""`mc logs` never hands an agent's escape sequences to the user's terminal (issue 14, item 8):
colours, OSC-8 links, window titles, clipboard writes and other C0/C1 controls are removed or
shown escaped; `--raw` writes the bytes as printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo

from cli.ansi import terminal_safe

pytestmark = pytest.mark.timeout(120)

HOSTILE_PRINT = (
    "\x1b[31mred\x1b[0m"
    " \x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"
    " \x1b]0;pwned title\x07"
    " \x1b]52;c;cm0gLXJmIH4=\x07"
    " \x1b[2J\x1b[H"
    " bell\x07 back\x08 cr\rhidden"
    " c1\u009b31m"
    " tab\tend"
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[1;31mbold red\x1b[0m", "bold red"),
        ("\x1b]8;;https://x.example/\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1b]8;;https://x.example/\x07link\x1b]8;;\x07", "link"),
        ("\x1b]0;title\x07after", "after"),
        ("\x1bPq#0;2;0;0;0\x1b\\sixel gone", "sixel gone"),
        ("\x1b7save\x1b8", "save"),
        ("\u009b2J\u009d0;t\u009cc1 forms", "c1 forms"),
        ("cr\rover", "cr\\rover"),
        ("nul\x00 del\x7f esc\x1b", "nul\\x00 del\\x7f esc\\e"),
        ("lines\nand\ttabs", "lines\nand\ttabs"),
        ("\x1b[31", "31"),  # cut short: the escape goes, no sequence reaches the terminal
        ("plain \u00e9t\u00e9 \u2603", "plain \u00e9t\u00e9 \u2603"),
    ],
)
def test_terminal_safe(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


def test_terminal_safe_leaves_no_control_but_newline_and_tab() -> None:
    every = "".join(chr(c) for c in range(0xA0)) * 3
    kept = {c for c in terminal_safe(every) if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0}
    assert kept <= {"\n", "\t"}


def test_mc_logs_strips_what_an_agent_prints_unless_raw(tmp_path: Path) -> None:
    repo = ExecRepo(tmp_path / "mission")
    code = f"import sys\nsys.stdout.write({HOSTILE_PRINT!r})\nresult(status='done')\n"
    repo.agent("painter", code)
    repo.task("paint", agent="painter")
    repo.commit("a painter")
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr

    shown = repo.mc("logs", "paint", "--stream", "stdout")
    assert shown.returncode == 0, shown.stderr
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in shown.stdout), repr(shown.stdout)
    assert "\u009b" not in shown.stdout
    assert "red" in shown.stdout and "click here" in shown.stdout
    assert "evil.example" not in shown.stdout and "pwned title" not in shown.stdout
    assert "cr\\rhidden" in shown.stdout

    raw = repo.mc("logs", "paint", "--stream", "stdout", "--raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == HOSTILE_PRINT.replace("\r", "\n")  # run_mc reads text: \r -> \n
