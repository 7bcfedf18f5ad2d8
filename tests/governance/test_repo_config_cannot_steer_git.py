"""The mission repo's own `.git/config` cannot run programs inside mc or forge a signature check
(every git call goes through reconciler/repo/git.py): what an unconfined agent, or anyone who
can write the repo, might plant there."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
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


# --- one table: every repo-local setting that would run a program ------------------------------


@dataclass(frozen=True)
class Planted:
    """A repo-local setting (and the attribute file that activates it) naming a program."""

    name: str
    config: tuple[tuple[str, str], ...]  # (key, value); "{prog}" is the planted program
    attributes: str = ""  # .git/info/attributes, which applies to every checkout and export


PLANTED = [
    Planted("core.hooksPath", (("core.hooksPath", "{hooks}"),)),
    Planted("core.fsmonitor", (("core.fsmonitor", "{prog}"),)),
    Planted("gpg.program", (("gpg.program", "{prog}"), ("gpg.openpgp.program", "{prog}"))),
    Planted("gpg.ssh.program", (("gpg.ssh.program", "{prog}"),)),
    Planted("core.sshCommand", (("core.sshCommand", "{prog}"),)),
    Planted("diff.external", (("diff.external", "{prog}"),)),
    Planted(
        "textconv and diff driver",
        (("diff.evil.textconv", "{prog}"), ("diff.evil.command", "{prog}")),
        "* diff=evil\n",
    ),
    Planted(
        "filter driver",
        (
            ("filter.evil.clean", "{prog}"),
            ("filter.evil.smudge", "{prog}"),
            ("filter.evil.process", "{prog}"),
            ("filter.evil.required", "true"),
        ),
        "* filter=evil\n",
    ),
]


@pytest.mark.parametrize("planted", PLANTED, ids=[p.name for p in PLANTED])
def test_no_repo_local_setting_runs_a_program(
    planted: Planted, waiting: GovRepo, alice: Signer, carol: Signer, tmp_path: Path
) -> None:
    """Plan, status, apply (a task runs: the tree is exported), approvals, and `mc approve`
    (add and a signed commit), over history holding SSH- and GPG-signed commits: the planted
    program never runs, and each command still does its job."""
    prog, ran = planted_program(tmp_path, "planted")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "commit-msg", "post-commit", "post-checkout", "post-index-change"):
        os.symlink(prog, hooks / hook)
    waiting.task("t1", agent="summarizer")
    waiting.commit("a task")
    waiting.approve(carol, "Agent/summarizer")  # GPG-signed history for `git log` to verify
    waiting.git("config", "gpg.format", "ssh")
    waiting.git("config", "user.signingkey", alice.signing_key)
    for key, value in planted.config:
        waiting.git("config", key, value.format(prog=prog, hooks=hooks))
    info = waiting.root / ".git" / "info"
    info.mkdir(exist_ok=True)
    (info / "attributes").write_text(planted.attributes)

    for args in (("plan",), ("status",), ("apply", "--auto-approve"), ("approvals",)):
        proc = waiting.mc(*args)
        assert proc.returncode in (0, 2), f"mc {' '.join(args)}: {proc.stderr}"
    approved = waiting.mc("approve", HIGH, env={"MC_DEBUG": "1"})
    assert approved.returncode == 0, approved.stdout + approved.stderr
    applied = waiting.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr

    assert not ran.exists(), f"mc ran the program the repo's {planted.name} names"
    assert waiting.task_row("t1").state == "DONE"
    assert waiting.pending() == []  # alice's approval, made and verified by mc's own programs
    assert waiting.applied_digest(HIGH) == waiting.digest(HIGH)


# --- files that would change what mc reads ------------------------------------------------------


def signed_after_a_forgery(waiting: GovRepo, alice: Signer, mallory: Signer) -> tuple[str, str]:
    """An approval of the pending change signed by mallory (no approver), then a commit alice
    signed for something else: (the forged file, alice's commit). Cut history at alice's
    commit and she would seem to have introduced the forged file."""
    path = waiting.approve(mallory, HIGH)
    waiting.write("notes.md", "unrelated\n")
    return path, waiting.commit("notes", alice)


@pytest.mark.parametrize("how", ["info/grafts", "shallow"])
def test_history_cut_short_by_local_files_credits_no_signature(
    how: str, waiting: GovRepo, alice: Signer, mallory: Signer
) -> None:
    path, alices = signed_after_a_forgery(waiting, alice, mallory)
    target = waiting.root / ".git" / how
    target.parent.mkdir(exist_ok=True)
    target.write_text(alices + "\n")  # alice's commit as a root: it 'adds' every file
    assert how != "shallow" or waiting.git("log", "--format=%H", "--", path) == alices

    waiting.apply()

    assert HIGH in waiting.pending()
    assert waiting.applied_digest(HIGH) != waiting.digest(HIGH)
    row = waiting.row_for(path)
    assert (row.status, row.approver) == ("rejected", None)
    assert row.evidence["commit"] != alices


def test_mc_approve_signs_with_the_program_of_the_users_global_config_only(
    waiting: GovRepo, alice: Signer, tmp_path: Path
) -> None:
    """The user's own signing helper (global config) signs `mc approve`'s commit; the same key
    in the repo's config is ignored (it would run whatever the repo names)."""
    real = shutil.which("ssh-keygen")
    assert real is not None
    helper, helper_ran = planted_program(tmp_path, "signing-helper", f'exec {real} "$@"\n')
    planted, planted_ran = planted_program(tmp_path, "repo-signer", f'exec {real} "$@"\n')
    user_config = tmp_path / "user.gitconfig"
    user_config.write_text(f'[gpg "ssh"]\n\tprogram = {helper}\n')
    waiting.git("config", "gpg.format", "ssh")
    waiting.git("config", "user.signingkey", alice.signing_key)
    waiting.git("config", "gpg.ssh.program", str(planted))

    signed = waiting.mc("approve", HIGH, env={"GIT_CONFIG_GLOBAL": str(user_config)})

    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert helper_ran.exists(), "the user's own signing program was not used"
    assert not planted_ran.exists(), "mc ran the repo's gpg.ssh.program"
    waiting.apply()
    assert waiting.pending() == []  # a real signature by alice
