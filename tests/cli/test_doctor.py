"""`mc doctor` through the real CLI: this machine as it is, a PATH without bubblewrap, and a
bubblewrap that cannot make a sandbox (as on a kernel without unprivileged user namespaces)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers.mc import flat, run_mc

PROGRAMS = ("git", "ssh", "ssh-keygen", "gpg", "true")
FAILING_BWRAP = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "bubblewrap 0.8.0"; exit 0; fi
echo "bwrap: setting up uid map: Permission denied" >&2
exit 1
"""


def path_with(tmp_path: Path, extra: dict[str, str] | None = None) -> str:
    """A PATH of one directory: links to git, ssh, gpg, … (when here), plus `extra` scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in PROGRAMS:
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    for name, text in (extra or {}).items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def doctor(path: str | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PATH": path} if path is not None else {})}
    return run_mc("doctor", *args, env=env)


def checks(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    body = json.loads(proc.stdout)
    return {c["name"]: c for c in body["checks"]}


def test_doctor_reports_this_machine() -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed here (`make test` installs it as root)")
    text = doctor()
    assert text.returncode == 0, text.stdout + text.stderr
    shown = flat(text.stdout)
    assert "ok git" in shown and "ok bwrap" in shown and "ok sandbox" in shown
    assert "Ready." in shown
    found = doctor(None, "--json")
    assert found.returncode == 0
    body = json.loads(found.stdout)
    assert body["ok"] is True
    by_name = {c["name"]: c for c in body["checks"]}
    assert list(by_name) == [
        "python",
        "git",
        "bwrap",
        "sandbox",
        "ssh-keygen",
        "gpg",
        "chromium",
        "ray",
    ]
    assert {n for n, c in by_name.items() if c["required"]} == {"python", "git", "bwrap", "sandbox"}
    assert by_name["sandbox"]["status"] == "ok"
    assert by_name["bwrap"]["version"]
    for c in by_name.values():
        assert set(c) == {"name", "status", "required", "purpose", "version", "detail", "fix"}
        assert c["status"] in ("ok", "missing", "broken") and c["purpose"]
        assert c["status"] == "ok" or c["fix"]


def test_without_bwrap_doctor_names_the_package_and_exits_1(tmp_path: Path) -> None:
    path = path_with(tmp_path)
    text = doctor(path)
    assert text.returncode == 1, text.stdout + text.stderr
    shown = flat(text.stdout)
    assert "missing bwrap (required)" in shown
    assert "fix: apt-get install bubblewrap" in shown
    assert "Not ready:" in shown
    assert "Traceback" not in text.stderr

    found = checks(doctor(path, "--json"))
    assert (found["bwrap"]["status"], found["sandbox"]["status"]) == ("missing", "missing")
    assert found["bwrap"]["fix"].startswith("apt-get install bubblewrap")
    if shutil.which("git"):
        assert found["git"]["status"] == "ok"
    assert found["chromium"]["status"] == "missing"  # not linked: optional, says how
    assert found["chromium"]["fix"].startswith("apt-get install chromium")


def test_a_bwrap_that_cannot_make_a_sandbox_is_broken(tmp_path: Path) -> None:
    path = path_with(tmp_path, {"bwrap": FAILING_BWRAP})
    text = doctor(path)
    assert text.returncode == 1
    found = checks(doctor(path, "--json"))
    assert (found["bwrap"]["status"], found["bwrap"]["version"]) == ("ok", "0.8.0")
    sandbox = found["sandbox"]
    assert sandbox["status"] == "broken"
    assert "setting up uid map: Permission denied" in sandbox["detail"]
    assert "unprivileged user namespaces" in sandbox["fix"] and "sandbox: none" in sandbox["fix"]


def test_probes_never_see_mcs_environment(tmp_path: Path) -> None:
    """The programs doctor starts get PATH only: a secret in mc's environment stays there."""
    log = tmp_path / "env.txt"
    spy = f'#!/bin/sh\nexport -p >> "{log}"\necho "bubblewrap 0.8.0"\n'
    path = path_with(tmp_path, {"bwrap": spy})
    env = {**os.environ, "PATH": path, "MC_DOCTOR_TEST_SECRET": "s3cret"}
    run_mc("doctor", env=env)
    seen = log.read_text()
    assert "s3cret" not in seen and "PATH=" in seen
