"""`mc doctor`: what this machine has for mc, what each part is for, and the fix for what is
missing; called by cli/doctor.py.

Each check looks for a program (or module) and asks it for its version; the sandbox check
starts a real sandbox (the same bubblewrap command line a run gets) around `true`, so a kernel
without unprivileged user namespaces shows up here, not as a failed run. Programs are started
with PATH only, never with mc's environment.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.runtime.sandbox import Sandbox, bwrap_argv

Status = Literal["ok", "missing", "broken"]
PROBE_TIMEOUT_S = 10.0
MIN_GIT = (2, 34)  # SSH signatures (gpg.format=ssh) need git 2.34
USERNS_FILES = ("/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces")
USERNS_FIX = (
    "allow unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`"
    " on Debian, `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04;"
    " in a container, run it with user namespaces allowed), or opt out with `sandbox: none`"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One part of the machine: whether it is there and works, and what it is for."""

    name: str
    status: Status
    required: bool
    purpose: str
    version: str | None = None
    detail: str | None = None  # why it is missing or broken
    fix: str | None = None  # what to install or change (when not ok)


@dataclass(frozen=True, slots=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Everything required is there and works."""
        return all(c.status == "ok" for c in self.checks if c.required)


def doctor() -> DoctorReport:
    bwrap = shutil.which("bwrap")
    return DoctorReport(
        (
            check_python(),
            check_git(),
            check_bwrap(bwrap),
            check_sandbox(bwrap),
            check_program(
                "ssh-keygen",
                ["ssh", "-V"],
                "signs and verifies SSH-signed approvals (approvers with an `ssh` key)",
                "apt-get install openssh-client",
            ),
            check_program(
                "gpg",
                ["gpg", "--version"],
                "signs and verifies GPG-signed approvals (approvers with a `gpg` key)",
                "apt-get install gnupg",
            ),
            check_chromium(),
            check_ray(),
        )
    )


def report_to_json(report: DoctorReport) -> dict[str, Any]:
    return {"ok": report.ok, "checks": [asdict(c) for c in report.checks]}


# --- the checks ------------------------------------------------------------------------------


def check_python() -> Check:
    version = ".".join(str(n) for n in sys.version_info[:3])
    ok = sys.version_info >= (3, 11)
    return Check(
        "python",
        "ok" if ok else "broken",
        True,
        f"runs mc ({sys.executable})",
        version,
        None if ok else "mc needs Python 3.11 or newer",
        None if ok else "install python3 (3.11+) and recreate the venv (`make install`)",
    )


def check_git() -> Check:
    purpose = "the mission repo: desired state, history, and verifying signed approvals"
    fix = "apt-get install git"
    found = _version_of(["git", "--version"], r"git version (\S+)")
    if isinstance(found, Problem):
        return Check("git", found.status, True, purpose, None, found.detail, fix)
    numbers = tuple(int(n) for n in re.findall(r"\d+", found)[:2])
    if numbers < MIN_GIT:
        need = ".".join(map(str, MIN_GIT))
        return Check("git", "broken", True, purpose, found, f"git {need}+ is needed", fix)
    return Check("git", "ok", True, purpose, found)


def check_bwrap(bwrap: str | None) -> Check:
    purpose = "bubblewrap: the sandbox every agent run gets by default"
    fix = "apt-get install bubblewrap (or opt out with `sandbox: none`: agents run unconfined)"
    if bwrap is None:
        return Check("bwrap", "missing", True, purpose, None, "bwrap is not on PATH", fix)
    found = _version_of([bwrap, "--version"], r"bubblewrap (\S+)")
    if isinstance(found, Problem):
        return Check("bwrap", found.status, True, purpose, None, found.detail, fix)
    return Check("bwrap", "ok", True, purpose, found)


def check_sandbox(bwrap: str | None) -> Check:
    """A real sandbox around `true`: namespaces, the system directories, a workspace."""
    purpose = "a real `bwrap … true` run: user namespaces and the sandbox work here"
    if bwrap is None:
        return Check("sandbox", "missing", True, purpose, None, "needs bwrap", "see bwrap")
    with tempfile.TemporaryDirectory(prefix="mc-doctor-") as workspace:
        argv = bwrap_argv(bwrap, Sandbox(), Path(workspace), ["true"])
        problem = _run(argv)
    if problem is None:
        return Check("sandbox", "ok", True, purpose, None, _userns_detail())
    detail = "; ".join(p for p in (problem, _userns_detail()) if p)
    return Check("sandbox", "broken", True, purpose, None, detail, USERNS_FIX)


def check_program(name: str, argv: Sequence[str], purpose: str, fix: str) -> Check:
    """An optional program: there (with its version, when it says one) or missing."""
    path = shutil.which(name)
    if path is None:
        return Check(name, "missing", False, purpose, None, f"{name} is not on PATH", fix)
    found = _version_of(argv, r"(\d+\.\d+(?:\.\d+)?\S*)")
    version = found if isinstance(found, str) else None
    return Check(name, "ok", False, purpose, version, path)


def check_chromium() -> Check:
    purpose = "mc's own browser tests (`make test`); not needed to use mc"
    fix = "apt-get install chromium (`make test` does it when run as root)"
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        return Check("chromium", "missing", False, purpose, None, "chromium is not on PATH", fix)
    return Check("chromium", "ok", False, purpose, None, path)


RAY_CLUSTER_FILE = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"


def check_ray() -> Check:
    """Installed (its version, without importing it), and whether the cluster `address: auto`
    would join (RAY_ADDRESS, else the one `ray start` left on this machine) answers on TCP."""
    purpose = "`executor: {kind: ray}` runs agents on a Ray cluster"
    try:
        version = importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        fix = "pip install '.[ray]' (in mc's venv), only for `executor: {kind: ray}`"
        return Check("ray", "missing", False, purpose, None, "not installed", fix)
    address = os.environ.get("RAY_ADDRESS") or _local_ray_address()
    if address is None:
        detail = "installed; no cluster here (RAY_ADDRESS unset, no `ray start` on this machine)"
        return Check("ray", "ok", False, purpose, version, detail)
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2.0):
            pass
    except (OSError, ValueError) as exc:
        fix = "start the cluster (`ray start --head ...`) or fix RAY_ADDRESS"
        why = f"cluster at {address} not reachable: {exc}"
        return Check("ray", "broken", False, purpose, version, why, fix)
    return Check("ray", "ok", False, purpose, version, f"cluster at {address} reachable")


def _local_ray_address() -> str | None:
    try:
        text = RAY_CLUSTER_FILE.read_text().strip()
    except OSError:
        return None
    return text or None


# --- running programs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    status: Status
    detail: str


def _version_of(argv: Sequence[str], pattern: str) -> str | Problem:
    """The version a program prints, or why it could not say."""
    if shutil.which(argv[0]) is None:
        return Problem("missing", f"{argv[0]} is not on PATH")
    output: list[str] = []
    problem = _run(argv, output.append)
    if problem is not None:
        return Problem("broken", problem)
    found = re.search(pattern, output[0] if output else "")
    return found.group(1) if found else (output[0].strip()[:80] if output else "")


def _run(argv: Sequence[str], on_output: Callable[[str], None] | None = None) -> str | None:
    """Run a probe with PATH only; None when it exits 0, else one line saying why not."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C"}
    try:
        proc = subprocess.run(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv[:1])}` did not finish within {PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"`{argv[0]}` cannot be started: {exc.strerror}"
    if on_output is not None:
        on_output(proc.stdout or proc.stderr)  # `ssh -V` answers on stderr
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        return f"exit {proc.returncode}" + (f": {said[-1][:200]}" if said else "")
    return None


def _userns_detail() -> str | None:
    """What the kernel says about unprivileged user namespaces (when it says anything)."""
    facts = []
    for path in USERNS_FILES:
        try:
            facts.append(f"{Path(path).name}={Path(path).read_text().strip()}")
        except OSError:
            continue
    return ", ".join(facts) or None
