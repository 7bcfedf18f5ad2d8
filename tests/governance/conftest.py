"""Fixtures for the governance tests: an isolated git/gpg environment, approvers with real keys,
and a mission repo that declares them (not committed yet)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from governance_harness import GIT_IDENTITY, GovRepo, Signer, gpg_signer, ssh_signer, stop_gpg_agent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, an empty GNUPGHOME of
    this test's own (never ~/.gnupg), no stray MC_* settings."""
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    empty_home = tmp_path / "gnupg-empty"
    empty_home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(empty_home))
    for name in ("MC_STATE", "MC_DEBUG", "FORCE_COLOR", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # sign with the key files given, only
    yield
    for home in tmp_path.rglob("gnupg*"):  # agents started by gpg in this test's homes
        if home.is_dir() and (home / "pubring.kbx").exists():
            stop_gpg_agent(home)


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Signer]:
    """SSH signing keys (cheap to share): alice and bob are approvers, mallory and dave are not."""
    directory = tmp_path_factory.mktemp("ssh-keys")
    return {name: ssh_signer(name, directory) for name in ("alice", "bob", "mallory", "dave")}


@pytest.fixture
def alice(ssh_keys: dict[str, Signer]) -> Signer:
    return ssh_keys["alice"]


@pytest.fixture
def bob(ssh_keys: dict[str, Signer]) -> Signer:
    return ssh_keys["bob"]


@pytest.fixture
def mallory(ssh_keys: dict[str, Signer]) -> Signer:
    return ssh_keys["mallory"]


@pytest.fixture
def dave(ssh_keys: dict[str, Signer]) -> Signer:
    return ssh_keys["dave"]


@pytest.fixture
def carol(tmp_path: Path) -> Signer:
    """A GPG approver, with a key made in this test's own GNUPGHOME."""
    return gpg_signer("carol", tmp_path / "gnupg-carol")


@pytest.fixture
def repo(tmp_path: Path, alice: Signer, bob: Signer) -> GovRepo:
    """A mission declaring alice and bob (SSH), with one agent; not committed yet."""
    gov = GovRepo(tmp_path / "mission", [alice, bob])
    gov.agent("summarizer")
    return gov
