"""Helpers for the governance tests: real keys, real signed commits, real state.

Approvers get real keys (`ssh-keygen`, `gpg --quick-gen-key` in a temporary GNUPGHOME); an
approval is a YAML file under approvals/ committed with `git commit -S` by that key; the
mission is planned and applied through `reconciler.commands` or the installed `mc` script.
Nothing here fakes git's signature check: what counts is what git verified. Git, YAML, the
`mc` runner and the repo builder come from `helpers` (re-exported for the tests that import
them from here); the fixtures are defined here and exposed by this folder's conftest.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers.agents import PY as PY
from helpers.agents import done_agent_code
from helpers.git import GIT_IDENTITY as GIT_IDENTITY
from helpers.git import git as git
from helpers.git import run as run
from helpers.mc import MC as MC
from helpers.mission_repo import GitRepo
from helpers.yaml_docs import doc as doc

from reconciler.commands.context import Clock
from reconciler.commands.plan_apply import Applied, Drive, make_plan
from reconciler.plan.actions import Plan, PlannedAction
from state.records import ApprovalRow, Event

# A whole agent in one `python -c`: report done with an output naming the task.
AGENT_CODE = done_agent_code()


# --- approvers and their keys ----------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """A person with a signing key: how mission.yaml declares it and how git signs with it."""

    name: str
    fmt: str  # ssh | openpgp
    public: str  # the ssh public key line, or the ASCII-armored GPG export
    signing_key: str  # path of the SSH public key (private key beside it), or the GPG fingerprint
    gnupg_home: Path | None = None

    def declaration(self) -> dict[str, Any]:
        keys = "ssh_keys" if self.fmt == "ssh" else "gpg_keys"
        return {"name": self.name, keys: [self.public]}

    def git_args(self) -> list[str]:
        return ["-c", f"gpg.format={self.fmt}", "-c", f"user.signingkey={self.signing_key}"]

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.gnupg_home)} if self.gnupg_home else {}


def ssh_signer(name: str, directory: Path) -> Signer:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)])
    pub = key.with_name(key.name + ".pub")
    return Signer(name, "ssh", pub.read_text().strip(), str(pub))


def gpg_signer(name: str, home: Path) -> Signer:
    """A fresh ed25519 signing key in its own GNUPGHOME (mode 700, never ~/.gnupg)."""
    home.mkdir(mode=0o700, parents=True)
    env = {"GNUPGHOME": str(home)}
    uid = f"{name.title()} <{name}@example.invalid>"
    base = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    run([*base, "--quick-gen-key", uid, "ed25519", "sign", "never"], env=env)
    colons = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env)
    fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    armored = run(["gpg", "--batch", "--armor", "--export", fpr], env=env)
    return Signer(name, "openpgp", armored, fpr, home)


def stop_gpg_agent(home: Path) -> None:
    """The agent `gpg` started for this home (and only it) is stopped by its own tool."""
    subprocess.run(
        ["gpgconf", "--kill", "gpg-agent"],
        env={**os.environ, "GNUPGHOME": str(home)},
        capture_output=True,
        check=False,
        timeout=30,
    )


# --- the mission repo ---------------------------------------------------------------------------


class GovRepo(GitRepo):
    """A mission repo with declared approvers, and the ways a test signs, plans and applies."""

    def __init__(self, root: Path, approvers: list[Signer]) -> None:
        super().__init__(root)
        self.approvers = approvers
        self.init(branch="main")
        self.mission()

    # --- writing the desired state -----------------------------------------------------------

    def mission(self, approvers: list[Signer] | None = None, **spec: Any) -> None:
        people = self.approvers if approvers is None else approvers
        spec = {"approvers": [p.declaration() for p in people], **spec}
        self.write_doc("mission.yaml", "Mission", "governed", spec)

    def agent(self, name: str, version: str = "v1", **spec: Any) -> None:
        """A tiny agent; a different `version` changes its command (a HIGH change)."""
        spec.setdefault("command", [PY, "-c", AGENT_CODE, version])
        super().agent(name, **spec)

    def commit(self, message: str = "edit", signer: Signer | None = None) -> str:
        """Commit every change, signed by `signer` (None: unsigned); the new HEAD."""
        self.git("add", "-A")
        sign = [*signer.git_args(), "commit", "-S"] if signer else ["commit"]
        env = signer.env() if signer else None
        self.git(*sign, "-q", "--allow-empty", "-m", message, env=env)
        return self.head()

    # --- approvals -----------------------------------------------------------------------------

    def digest(self, target: str) -> str:
        """The digest of the target's committed content (what an approval must name)."""
        desired = self.context().repo.desired("HEAD")
        return desired.docs[target].digest

    def approval_file(
        self,
        name: str,
        target: str,
        digest: str | None = None,
        deny: bool = False,
        reason: str = "looks right",
    ) -> str:
        spec = {
            "target": target,
            "digest": digest or self.digest(target),
            "decision": "deny" if deny else "approve",
            "reason": reason,
        }
        return self.write_doc(f"approvals/{name}.yaml", "Approval", name, spec)

    def approve(
        self,
        signer: Signer | None,
        target: str,
        name: str | None = None,
        digest: str | None = None,
        deny: bool = False,
    ) -> str:
        """Add an approval file in its own commit, signed by `signer` (None: unsigned)."""
        who = signer.name if signer else "nobody"
        name = name or f"{'deny' if deny else 'ok'}-{who}-{target.replace('/', '-').lower()}"
        name = name.replace(".", "-")
        self.approval_file(name, target, digest, deny)
        self.commit(f"{'Deny' if deny else 'Approve'} {target}", signer)
        return f"approvals/{name}.yaml"

    # --- planning, applying, driving ----------------------------------------------------------

    def plan(self, clock: Clock | None = None) -> Plan:
        return make_plan(self.context(clock), "HEAD").plan

    def action(self, target: str, clock: Clock | None = None) -> PlannedAction:
        plan = self.plan(clock)
        found = [a for a in plan.actions if a.key == target]
        assert found, f"{target} not in the plan: {[a.key for a in plan.actions]}"
        return found[0]

    def apply(self, drive: bool = False, clock: Clock | None = None) -> Applied:
        """`mc apply --auto-approve` in-process; drive the work only when asked."""
        return self.apply_now(Drive() if drive else None, clock)

    # --- reading the state ---------------------------------------------------------------------

    def applied_digest(self, target: str) -> str | None:
        kind, name = target.split("/", 1)
        with self.state() as state:
            res = state.reader.resource(kind, name)
        return res.digest if res else None

    def pending(self) -> list[str]:
        with self.state() as state:
            return [p.key for p in state.reader.pending()]

    def approval_rows(self, status: str | None = None) -> list[ApprovalRow]:
        with self.state() as state:
            return state.reader.approvals(status=status)

    def row_for(self, path: str) -> ApprovalRow:
        rows = [r for r in self.approval_rows() if r.evidence.get("path") == path]
        assert len(rows) == 1, f"one judgement of {path} expected: {rows}"
        return rows[0]

    def rejection(self, path: str) -> Event:
        """The one `approval.rejected` event about this approval file."""
        found = [
            e for e in self.events("approval.rejected") if e.data["evidence"].get("path") == path
        ]
        assert len(found) == 1, f"one rejection event for {path} expected: {found}"
        return found[0]

    def runs_of(self, task: str) -> int:
        with self.state() as state:
            return len(state.reader.runs(task=task))

    def commit_time(self, rev: str = "HEAD") -> datetime:
        """The committer time git records (what an approval's age is measured from), naive UTC."""
        seconds = int(self.git("log", "-1", "--format=%ct", rev))
        return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def at(moment: datetime) -> Clock:
    return lambda: moment


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty GNUPGHOME of this test's own (never ~/.gnupg) and no SSH agent: sign with the
    key files given, only. Stops the gpg agents started in this test's homes afterwards."""
    empty_home = tmp_path / "gnupg-empty"
    empty_home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(empty_home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    yield
    for home in tmp_path.rglob("gnupg*"):
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


WAITING_TARGET = "Agent/summarizer"


@pytest.fixture
def waiting(repo: GovRepo) -> GovRepo:
    """Applied once (trust on first use); then the agent's command changed: HIGH, pending."""
    repo.commit("mission")
    repo.apply()
    repo.agent("summarizer", version="v2")
    repo.commit("new summarizer command")
    repo.apply()
    assert repo.pending() == [WAITING_TARGET]
    return repo
