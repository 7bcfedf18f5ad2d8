"""Git for tests: one isolated identity, no user or system config, failures as assertions."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

# No user config (signing, hooks, templates) and no system config leak into a test's git.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "MC Tests",
    "GIT_AUTHOR_EMAIL": "mc-tests@example.invalid",
    "GIT_COMMITTER_NAME": "MC Tests",
    "GIT_COMMITTER_EMAIL": "mc-tests@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
# Settings that would point git or mc somewhere else than the test says.
STRAY_ENV = ("MC_STATE", "MC_DEBUG", "FORCE_COLOR", "GIT_DIR", "GIT_WORK_TREE")
COMMAND_TIMEOUT_S = 60


def run(cmd: list[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run a command with the test identity (plus `env`); assert it succeeded; its stdout."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"
    return proc.stdout.strip()


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """`git ARGS` in `cwd`; its stripped stdout."""
    return run(["git", *args], cwd, env)


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """This test's process environment: the test identity, no git repo found above `home`,
    no stray MC_*/GIT_* settings (what the autouse `isolated_env` fixture does)."""
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(home))
    for name in STRAY_ENV:
        monkeypatch.delenv(name, raising=False)


def isolated_environ(home: Path) -> dict[str, str]:
    """The same isolation as a fresh environment dict, for fixtures wider than one test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MC_", "GIT_"))}
    env.pop("FORCE_COLOR", None)
    return {**env, **GIT_IDENTITY, "GIT_CEILING_DIRECTORIES": str(home)}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, no git repo found above
    this test's tmp_path, no stray MC_* settings (tests/conftest.py applies it to every test)."""
    isolate(monkeypatch, tmp_path)
    yield
