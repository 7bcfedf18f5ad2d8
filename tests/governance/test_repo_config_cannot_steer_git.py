"""The mission repo's own `.git/config` cannot run programs inside mc or forge a signature check
(every git call goes through reconciler/repo/git.py): what an unconfined agent, or anyone who
can write the repo, might plant there."""

from __future__ import annotations

import os
from pathlib import Path

from governance_harness import GovRepo, Signer

HIGH = "Agent/summarizer"


def planted_program(tmp_path: Path, name: str, body: str = "") -> tuple[Path, Path]:
    """A script that leaves a marker file when anything runs it; (script, marker)."""
    marker = tmp_path / f"{name}.ran"
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\ntouch {marker}\n{body}exit 0\n")
    script.chmod(0o755)
    return script, marker


def test_a_fake_ssh_keygen_in_the_repo_config_cannot_forge_an_approval(
    waiting: GovRepo, mallory: Signer, tmp_path: Path
) -> None:
    says_good = (
        'case "$*" in *find-principals*) echo alice;; '
        "*) echo 'Good \"git\" signature for alice with ED25519 key SHA256:forged';; esac\n"
    )
    fake, ran = planted_program(tmp_path, "fake-ssh-keygen", says_good)
    path = waiting.approve(mallory, HIGH)  # signed for real, by a key nobody declared
    waiting.git("config", "gpg.ssh.program", str(fake))  # planted after: it must not verify
    waiting.apply()
    assert not ran.exists(), "mc ran the repo's gpg.ssh.program"
    reason = waiting.rejection(path).data["reason"]
    assert "signed by a key no applied approver declares" in reason
    assert HIGH in waiting.pending()


def test_hooks_fsmonitor_and_pager_in_the_repo_config_never_run(
    waiting: GovRepo, tmp_path: Path
) -> None:
    fsmonitor, fs_ran = planted_program(tmp_path, "fsmonitor")
    pager, pager_ran = planted_program(tmp_path, "pager")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook, hook_ran = planted_program(tmp_path, "hook")
    for name in ("post-checkout", "reference-transaction", "post-index-change"):
        os.symlink(hook, hooks / name)
    for key, value in (
        ("core.fsmonitor", str(fsmonitor)),
        ("core.hooksPath", str(hooks)),
        ("core.pager", str(pager)),
        ("pager.log", str(pager)),
    ):
        waiting.git("config", key, value)
    for args in (("plan",), ("status",), ("apply", "--auto-approve"), ("approvals",)):
        proc = waiting.mc(*args)
        assert proc.returncode in (0, 2), proc.stderr
    assert not fs_ran.exists(), "mc ran the repo's core.fsmonitor"
    assert not pager_ran.exists(), "mc ran the repo's pager"
    assert not hook_ran.exists(), "mc ran a hook from the repo's core.hooksPath"
