"""The real `mc` CLI for tests: where it is installed, and running it as CI would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).with_name("mc")
# The installed console script is what users run; `python -m cli` is the same entry point.
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
CLI_TIMEOUT_S = 120  # a hang guard only
WIDE = {"COLUMNS": "250"}  # wide enough that tables do not wrap


def run_mc(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; stdin is not a terminal, as in CI. `env` replaces the environment."""
    return subprocess.run(
        [*MC, *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def mc_ok(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run the CLI, assert it succeeded; its stdout."""
    proc = run_mc(*args, cwd=cwd, env=env)
    assert proc.returncode == 0, f"mc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def mc_json(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Any:
    """`mc ARGS --json`, parsed."""
    return json.loads(mc_ok(*args, "--json", cwd=cwd, env=env))


def start_mc(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in the background (e.g. `mc serve`), its output piped; the caller stops it."""
    return subprocess.Popen(
        [*MC, *args],
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill a background `mc` the test has not stopped (it failed midway) and wait for it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def flat(text: str) -> str:
    """Whitespace-normalised text, so assertions do not depend on terminal width."""
    return " ".join(text.split())
