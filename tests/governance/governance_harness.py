"""Helpers for the governance tests: real keys, real signed commits, real state.

Approvers get real keys (`ssh-keygen`, `gpg --quick-gen-key` in a temporary GNUPGHOME); an
approval is a YAML file under approvals/ committed with `git commit -S` by that key; the
mission is planned and applied through `reconciler.commands.mission` or the installed `mc` script.
Nothing here fakes git's signature check: what counts is what git verified.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from reconciler.commands.mission import (
    Applied,
    Clock,
    Drive,
    Workspace,
    apply_now,
    make_plan,
)
from reconciler.plan.actions import Plan, PlannedAction
from state.records import ApprovalRow, Event, TaskRow
from state.store import State

PY = sys.executable
_SCRIPT = Path(sys.executable).with_name("mc")
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
CLI_TIMEOUT_S = 60

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Governance Tests",
    "GIT_AUTHOR_EMAIL": "governance-tests@example.invalid",
    "GIT_COMMITTER_NAME": "Governance Tests",
    "GIT_COMMITTER_EMAIL": "governance-tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # no user config (signing keys, hooks) leaks in
}

# A whole agent in one `python -c`: report done with an output naming the task.
AGENT_CODE = (
    "import json, os, pathlib;"
    "t = json.loads(pathlib.Path(os.environ['MC_TASK_JSON']).read_text());"
    "pathlib.Path(os.environ['MC_RESULT_JSON']).write_text("
    "json.dumps({'status': 'done', 'output': 'did ' + t['task']}))"
)


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"
    return proc.stdout.strip()


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return run(["git", *args], cwd, env)


def doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "mc/v1", "kind": kind, "metadata": {"name": name}, "spec": spec},
        sort_keys=False,
    )


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


class GovRepo:
    """A mission repo with declared approvers, and the ways a test signs, plans and applies."""

    def __init__(self, root: Path, approvers: list[Signer]) -> None:
        self.root = root
        self.approvers = approvers
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "-b", "main")
        self.mission()

    # --- writing the desired state -----------------------------------------------------------

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def mission(self, approvers: list[Signer] | None = None, **spec: Any) -> None:
        people = self.approvers if approvers is None else approvers
        spec = {"approvers": [p.declaration() for p in people], **spec}
        self.write("mission.yaml", doc("Mission", "governed", spec))

    def agent(self, name: str, version: str = "v1", **spec: Any) -> None:
        """A tiny agent; a different `version` changes its command (a HIGH change)."""
        spec.setdefault("command", [PY, "-c", AGENT_CODE, version])
        spec.setdefault("timeout", "20s")
        self.write(f"agents/{name}.yaml", doc("Agent", name, spec))

    def task(self, name: str, **spec: Any) -> None:
        spec.setdefault("title", f"Task {name}")
        spec.setdefault("retry", {"max_attempts": 1})
        self.write(f"tasks/{name}.yaml", doc("Task", name, spec))

    def commit(self, message: str = "edit", signer: Signer | None = None) -> str:
        git(self.root, "add", "-A")
        sign = [*signer.git_args(), "commit", "-S"] if signer else ["commit"]
        env = signer.env() if signer else None
        git(self.root, *sign, "-q", "--allow-empty", "-m", message, env=env)
        return self.head()

    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD")

    # --- approvals -----------------------------------------------------------------------------

    def digest(self, target: str) -> str:
        """The digest of the target's committed content (what an approval must name)."""
        desired = Workspace.at(self.root).repo.desired("HEAD")
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
        rel = f"approvals/{name}.yaml"
        self.write(rel, doc("Approval", name, spec))
        return rel

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

    def workspace(self, clock: Clock | None = None) -> Workspace:
        ws = Workspace.at(self.root)
        return replace(ws, clock=clock) if clock is not None else ws

    def plan(self, clock: Clock | None = None) -> Plan:
        return make_plan(self.workspace(clock), "HEAD").plan

    def action(self, target: str, clock: Clock | None = None) -> PlannedAction:
        plan = self.plan(clock)
        found = [a for a in plan.actions if a.key == target]
        assert found, f"{target} not in the plan: {[a.key for a in plan.actions]}"
        return found[0]

    def apply(self, drive: bool = False, clock: Clock | None = None) -> Applied:
        """`mc apply --auto-approve` in-process; drive the work only when asked."""
        return apply_now(
            self.workspace(clock), "test", lambda plan: True, Drive() if drive else None
        )

    def mc(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The real CLI: stdin not a terminal, wide enough that tables do not wrap."""
        return subprocess.run(
            [*MC, "-C", str(self.root), *args],
            env={**os.environ, "COLUMNS": "250", **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=CLI_TIMEOUT_S,
        )

    # --- reading the state ---------------------------------------------------------------------

    @contextmanager
    def state(self) -> Iterator[State]:
        with State.open(self.root / ".mc" / "state.duckdb", write=False) as state:
            yield state

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

    def events(self, kind: str, subject: str | None = None) -> list[Event]:
        with self.state() as state:
            found = state.reader.events(limit=10_000)
        return [e for e in found if e.kind == kind and (subject is None or e.subject == subject)]

    def rejection(self, path: str) -> Event:
        """The one `approval.rejected` event about this approval file."""
        found = [
            e for e in self.events("approval.rejected") if e.data["evidence"].get("path") == path
        ]
        assert len(found) == 1, f"one rejection event for {path} expected: {found}"
        return found[0]

    def task_row(self, name: str) -> TaskRow:
        with self.state() as state:
            rows = state.reader.tasks([name])
        assert rows, f"no task {name} in the state"
        return rows[0]

    def runs_of(self, task: str) -> int:
        with self.state() as state:
            return len(state.reader.runs(task=task))

    def commit_time(self, rev: str = "HEAD") -> datetime:
        """The committer time git records (what an approval's age is measured from), naive UTC."""
        seconds = int(git(self.root, "log", "-1", "--format=%ct", rev))
        return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def at(moment: datetime) -> Clock:
    return lambda: moment
