"""Approver key entries are checked when mission.yaml is parsed: a key git would silently never
match (options, a wrong type, a private or unarmored GPG key) is an error at its file:line."""

from __future__ import annotations

import base64
import struct
import subprocess
from pathlib import Path

import pytest
from spec_repo import doc, parse

SSH_ED25519 = (
    "ssh-ed25519 "
    + base64.b64encode(
        struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    ).decode()
)
GPG_PUBLIC = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----"


def mission_with(keys: str) -> str:
    """mission.yaml with one approver; its first key entry is on line 7."""
    return doc("Mission", "m", f"approvers:\n  - name: alice\n    {keys}")


def problems_of(keys: str) -> list[str]:
    docs, found = parse("mission.yaml", mission_with(keys))
    assert docs == [] or not found
    return found


def test_a_real_public_key_line_is_accepted(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@x", "-f", str(key)],
        check=True,
        timeout=30,
    )
    line = (tmp_path / "k.pub").read_text().strip()
    assert problems_of(f"ssh_keys: [{line!r}]") == []
    assert problems_of(f"ssh_keys: [{SSH_ED25519!r}]") == []  # a comment is optional


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (f'valid-before="20200101" {SSH_ED25519}', "SSH key options are not supported"),
        (f"cert-authority {SSH_ED25519}", "SSH key options are not supported"),
        (f'namespaces="git" {SSH_ED25519}', "SSH key options are not supported"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "unknown SSH key type 'ssh-dss'"),
        ("ssh-ed25519", "SSH key has no key data after 'ssh-ed25519'"),
        ("ssh-ed25519 not*base64", "SSH key data of ssh-ed25519 is not base64"),
        ("ssh-rsa " + SSH_ED25519.split()[1], "SSH key data is not a ssh-rsa key"),
        ("", "SSH key is empty"),
    ],
)
def test_an_ssh_key_git_would_never_match_is_refused_at_its_line(entry: str, expected: str) -> None:
    [line] = problems_of(f"ssh_keys: [{entry!r}]")
    assert line.startswith("mission.yaml:7:"), line
    assert "approvers.0.ssh_keys.0" in line and expected in line, line


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("0xDEADBEEF", "GPG key must be an ASCII-armored public key block"),
        (
            GPG_PUBLIC.replace("PUBLIC", "PRIVATE"),
            "this is a private GPG key; give its public export",
        ),
        (GPG_PUBLIC + "\n" + GPG_PUBLIC, "one GPG public key block per entry"),
    ],
)
def test_a_gpg_key_must_be_one_armored_public_block(entry: str, expected: str) -> None:
    [line] = problems_of(f"gpg_keys: [{entry!r}]")
    assert line.startswith("mission.yaml:7:") and expected in line, line


def test_an_armored_public_block_is_accepted() -> None:
    assert problems_of(f"gpg_keys: [{GPG_PUBLIC!r}]") == []
