"""Who signed each approval file's last commit, verified by git; for plan/governed.py.

Trust comes only from the applied mission's approvers: their SSH keys become an
allowed-signers file and their GPG keys a keyring private to the state directory, so neither
the user's own git/gpg configuration nor the repo's content can add a trusted key.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.repo.git import git_argv, git_env, program
from specs.models import Approver

FIELD_SEP, RECORD = "\x1f", "\x1e"


@dataclass(frozen=True, slots=True)
class Signature:
    """The last commit touching a file and git's verdict on its signature."""

    commit: str
    status: str  # %G?: G good, U good but unknown validity, N none, B bad, E cannot check, …
    signer: str  # %GS: the allowed-signers principal (SSH) or the user id (GPG)
    key: str  # %GF / %GK: key fingerprint
    primary: str  # %GP: primary key fingerprint (GPG)
    time: datetime  # committer time


@dataclass(frozen=True)
class TrustStore:
    """Files git verifies against, generated from the applied approvers."""

    allowed_signers: Path
    gnupg_home: Path
    gpg_fingerprints: dict[str, str]  # fingerprint -> approver

    def approver_for(self, sig: Signature, approvers: frozenset[str]) -> str | None:
        """The declared approver who made this signature, or None."""
        if sig.status == "G" and sig.signer in approvers and sig.key.startswith("SHA256:"):
            return sig.signer  # SSH: git matched the key to this principal
        if sig.status in ("G", "U"):  # GPG: good signature; trust = a declared fingerprint
            for fpr in (sig.key, sig.primary):
                if fpr and fpr.upper() in self.gpg_fingerprints:
                    return self.gpg_fingerprints[fpr.upper()]
        return None


def build_trust(approvers: list[Approver], directory: Path) -> TrustStore:
    """Write the allowed-signers file and the private keyring (rebuilt when approvers change)."""
    directory.mkdir(parents=True, exist_ok=True)
    allowed = directory / "allowed_signers"
    # entries are `<type> <base64> [comment]` (specs/keys.py refuses options): type and key
    lines = [
        f'{a.name} namespaces="git" {" ".join(key.split()[:2])}'
        for a in approvers
        for key in a.ssh_keys
        if len(key.split()) >= 2
    ]
    allowed.write_text("\n".join(lines) + ("\n" if lines else ""))
    armored = [(a.name, k) for a in approvers for k in a.gpg_keys]
    tag = hashlib.sha256(repr(sorted(armored)).encode()).hexdigest()[:16]
    home = directory / f"gnupg-{tag}"
    fingerprints: dict[str, str] = {}
    if armored:
        fresh = not home.exists()
        home.mkdir(mode=0o700, exist_ok=True)
        for name, key in armored:
            for fpr in _gpg_fingerprints(key, home):
                fingerprints[fpr] = name
            if fresh:
                _gpg(home, ["--import"], key)
    return TrustStore(allowed, home, fingerprints)


def _gpg(home: Path, args: list[str], data: str) -> str:
    proc = subprocess.run(
        [program("gpg"), "--batch", "--quiet", "--no-tty", "--with-colons", *args],
        input=data.encode(),
        capture_output=True,
        env=git_env({"GNUPGHOME": str(home)}),  # gpg gets none of mc's secrets either
        check=False,
    )
    return proc.stdout.decode(errors="replace")


def _gpg_fingerprints(key: str, home: Path) -> list[str]:
    out = _gpg(home, ["--import-options", "show-only", "--import"], key)
    return [line.split(":")[9].upper() for line in out.splitlines() if line.startswith("fpr:")]


def last_signatures(
    root: Path, rev: str, paths: list[str], trust: TrustStore
) -> dict[str, Signature]:
    """For each path: the last commit in `rev`'s history that touched it, with its signature.

    History simplification skips a merge that took the file from one parent, so the file is
    attributed to the commit that wrote that version; a merge that changed it is that commit.
    """
    if not paths:
        return {}
    fmt = RECORD + FIELD_SEP.join(["%H", "%G?", "%GS", "%GF", "%GP", "%GK", "%ct"])
    proc = subprocess.run(
        git_argv(
            root,
            "log",
            f"--format={fmt}",
            "--name-only",
            # a merge counts as touching a file only when its version is in no parent (an
            # edit made in the merge itself); plain `log` lists no files for merges at all
            "--diff-merges=combined",
            rev,
            "--",
            *paths,
            config=[
                "-c",
                f"gpg.ssh.allowedSignersFile={trust.allowed_signers}",
                "-c",
                "core.quotePath=false",  # list non-ASCII file names as they are, to match paths
            ],
        ),
        capture_output=True,
        env=git_env({"GNUPGHOME": str(trust.gnupg_home)}),
        check=False,
    )
    found: dict[str, Signature] = {}
    for record in proc.stdout.decode(errors="replace").split(RECORD)[1:]:
        head, _, names = record.partition("\n")
        commit, status, signer, fpr, primary, key, ctime = head.split(FIELD_SEP)
        sig = Signature(
            commit,
            status,
            signer,
            fpr or key,
            primary,
            datetime.fromtimestamp(int(ctime), UTC).replace(tzinfo=None),
        )
        for name in names.split("\n"):
            if name.strip() in paths and name.strip() not in found:
                found[name.strip()] = sig
    return found
