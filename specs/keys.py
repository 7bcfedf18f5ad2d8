"""What an approver's key entry may be: checked when mission.yaml is parsed (specs/models.py).

An SSH entry is `<type> <base64> [comment]`, the line of a `.pub` file. Options in front of
it (`valid-before=…`, `cert-authority`, `namespaces=…`) are refused, not honoured: mc writes
the allowed-signers file itself with `namespaces="git"`, and validity options would be judged
by git against the commit's own date, which its committer chooses, so they would promise a
bound that does not hold. A GPG entry is one ASCII-armored public key block.
"""

from __future__ import annotations

import base64
import binascii
import struct

# Key types `ssh-keygen -Y verify` accepts for git signatures (OpenSSH 8.x/9.x); DSA is gone
# from OpenSSH, and certificates would need a cert-authority line mc does not write.
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
MAX_KEY_CHARS = 16_384  # an RSA-16384 public key is ~2.8k characters
GPG_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
GPG_END = "-----END PGP PUBLIC KEY BLOCK-----"


def check_ssh_key(entry: str) -> str:
    """`entry` unchanged when it is `<type> <base64> [comment]` with a known type whose
    base64 blob names that same type; else ValueError saying what is wrong and how to fix it."""
    if len(entry) > MAX_KEY_CHARS:
        raise ValueError(f"SSH key is {len(entry)} characters long; expected one .pub line")
    parts = entry.split()
    if not parts:
        raise ValueError("SSH key is empty; expected '<type> <base64> [comment]'")
    if parts[0] not in SSH_KEY_TYPES:
        if (
            "=" in parts[0]
            or parts[0] == "cert-authority"
            or any(t in parts for t in SSH_KEY_TYPES)
        ):
            raise ValueError(
                f"SSH key options are not supported ({parts[0][:40]!r}): give the key as"
                " '<type> <base64> [comment]' (mc writes the allowed-signers line itself)"
            )
        known = ", ".join(SSH_KEY_TYPES)
        raise ValueError(f"unknown SSH key type {parts[0][:40]!r}; expected one of {known}")
    if len(parts) < 2:
        raise ValueError(f"SSH key has no key data after {parts[0]!r}")
    _check_blob(parts[0], parts[1])
    return entry


def _check_blob(kind: str, data: str) -> None:
    """The base64 wire blob must decode and start with its own type string."""
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"SSH key data of {kind} is not base64") from None
    if len(blob) < 4:
        raise ValueError(f"SSH key data of {kind} is truncated")
    (size,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + size] != kind.encode():
        raise ValueError(f"SSH key data is not a {kind} key (its type and data disagree)")


def check_gpg_key(entry: str) -> str:
    """`entry` unchanged when it is exactly one ASCII-armored public key block; else
    ValueError (a private key, a fingerprint or a binary export are refused)."""
    text = entry.strip()
    if "PRIVATE KEY BLOCK" in text:
        raise ValueError("this is a private GPG key; give its public export (gpg --armor --export)")
    if not text.startswith(GPG_BEGIN) or not text.endswith(GPG_END):
        raise ValueError(
            "GPG key must be an ASCII-armored public key block"
            f" ({GPG_BEGIN} … {GPG_END}, from gpg --armor --export)"
        )
    if text.count(GPG_BEGIN) != 1:
        raise ValueError("one GPG public key block per entry (list each key on its own)")
    return entry
