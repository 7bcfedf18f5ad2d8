"""`mc bot` and `mc serve` start the bot when mission.yaml names a chat and its token is set,
answer in the chat, and stop cleanly on SIGTERM; without the token `mc bot` says why."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest
from bot_api_standin import BotApiStandIn, command_update
from helpers.mc import MC
from tg_harness import ALICE, CHAT, TOKEN, TOKEN_ENV, TgRepo, wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("command", ["bot", "serve"])
def test_command_runs_the_bot_and_stops_on_sigterm(
    command: str, repo: TgRepo, standin: BotApiStandIn
) -> None:
    extra = ["--port", str(_free_port())] if command == "serve" else []
    proc = subprocess.Popen(
        [*MC, "-C", str(repo.root), command, "--resync", "2", *extra],
        env={**os.environ, TOKEN_ENV: TOKEN, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        standin.wait_for(lambda: standin.calls_of("getUpdates"), 30, "the bot polling")
        wait_until(lambda: (repo.root / ".mc" / "state.duckdb").exists(), what="the state file")
        standin.push(command_update("/status", ALICE, CHAT))
        standin.wait_for(
            lambda: [m for m in standin.messages() if "Mission ops" in m.text], 20, "a /status"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Telegram" in out and "chat -100777" in out, out


def test_mc_bot_without_the_token_says_why(repo: TgRepo) -> None:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    proc = subprocess.run(
        [*MC, "-C", str(repo.root), "bot"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert f"${TOKEN_ENV}" in proc.stderr and "is not set" in proc.stderr
