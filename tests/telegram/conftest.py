"""Fixtures for the Telegram tests: an isolated git environment, SSH keys for the approvers,
a Bot API stand-in on loopback and a mission repo pointing the bot at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_api_standin import BotApiStandIn
from tg_harness import GIT_IDENTITY, TOKEN, Key, TgRepo, ssh_key


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("MC_STATE", "MC_DEBUG", "GIT_DIR", "GIT_WORK_TREE", "SSH_AUTH_SOCK"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # loopback only, never through a proxy
    yield


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    directory = tmp_path_factory.mktemp("ssh-keys")
    return {name: ssh_key(name, directory) for name in ("alice", "bob", "carol")}


@pytest.fixture
def standin() -> Iterator[BotApiStandIn]:
    server = BotApiStandIn(TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def repo(tmp_path: Path, keys: dict[str, Key], standin: BotApiStandIn) -> TgRepo:
    """alice and bob approve; one agent, `writer`; committed (not applied yet)."""
    mission = TgRepo(tmp_path / "mission", keys, standin.base_url)
    mission.agent("writer")
    mission.commit("Mission with a Telegram chat")
    return mission
