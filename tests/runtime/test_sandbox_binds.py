"""What a sandbox binds is what mc checked: each mount, drop and workspace is opened once, the
check is made on that descriptor, and bwrap binds that descriptor, so a path swapped for a
symlink in between changes nothing. Real bwrap runs (the system's /bin/sh) where it matters."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers.agents import interpreter_mounts
from runtime_harness import Agents, run_one

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.nofollow import PlantedLink
from reconciler.runtime.sandbox import (
    Bind,
    Mount,
    MountRefused,
    Sandbox,
    bwrap_argv,
    close_binds,
    find_bwrap,
    open_drops,
    open_mounts,
    open_workspace,
)

pytestmark = pytest.mark.timeout(60)


class Host:
    """A mission repo (with a .git/config worth stealing) and a shared folder beside it."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.repo = top / "mission"
        (self.repo / ".git").mkdir(parents=True)
        (self.repo / ".git" / "config").write_text("precious\n")
        self.shared = top / "shared"
        self.data = self.shared / "data"  # what the agent declares
        self.data.mkdir(parents=True)
        (self.data / "marker").write_text("checked\n")
        self.ws = top / "ws"
        self.ws.mkdir()

    def swap_for_link(self, path: Path, target: Path) -> Path:
        """Put a symlink to `target` where `path` is (a directory is moved aside: returned)."""
        aside = path.with_name(path.name + ".old")
        if path.is_dir() and not path.is_symlink():
            path.rename(aside)
        tmp = path.with_name(".swap")
        tmp.symlink_to(target)
        tmp.rename(path)
        return aside

    def sandbox(self, *mounts: Mount) -> Sandbox:
        return Sandbox(mounts=mounts, protected=(self.repo,))

    def run(self, binds: list[Bind], script: str) -> str:
        """/bin/sh -c script in a sandbox that binds `binds` (as spawn does: pass_fds)."""
        argv = bwrap_argv(find_bwrap(), Sandbox(), self.ws, ["/bin/sh", "-c", script], None, binds)
        proc = subprocess.run(
            argv, pass_fds=[b.fd for b in binds], capture_output=True, text=True, timeout=20
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def opened() -> Iterator[list[Bind]]:
    """Descriptors a test opens, closed after it."""
    binds: list[Bind] = []
    yield binds
    close_binds(binds)


def real(bind: Bind) -> Path:
    return Path(os.readlink(f"/proc/self/fd/{bind.fd}"))


# --- mounts -----------------------------------------------------------------------------------


def test_a_mount_swapped_for_a_link_to_the_repo_after_its_check_binds_what_was_checked(
    host: Host, opened: list[Bind]
) -> None:
    opened += open_mounts(host.sandbox(Mount(host.data, writable=True)))
    checked = host.swap_for_link(host.data, host.repo)  # the race: after the check, before bwrap
    out = host.run(opened, f"cat {host.data}/marker; ls -a {host.data}; echo x > {host.data}/new")
    assert out.split() == ["checked", ".", "..", "marker"]
    assert (checked / "new").read_text() == "x\n"  # written where the check said
    assert sorted(p.name for p in host.repo.iterdir()) == [".git"]
    assert (host.repo / ".git" / "config").read_text() == "precious\n"


@pytest.mark.parametrize("opened_on", ["repo", "data"])
def test_the_check_is_made_on_the_descriptor_not_on_the_path_again(
    host: Host, opened: list[Bind], monkeypatch: pytest.MonkeyPatch, opened_on: str
) -> None:
    """The declared link flips right after open(): what was opened decides, both ways."""
    link = host.shared / "link"
    first, then = (host.repo, host.data) if opened_on == "repo" else (host.data, host.repo)
    link.symlink_to(first)
    real_open = os.open

    def racing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        if Path(path) == link:
            host.swap_for_link(link, then)
        return fd

    monkeypatch.setattr(os, "open", racing_open)
    sandbox = host.sandbox(Mount(link, writable=True))
    if opened_on == "repo":
        with pytest.raises(MountRefused, match=f"mount {link} overlaps the mission repo"):
            open_mounts(sandbox)
        return
    opened += open_mounts(sandbox)
    monkeypatch.undo()
    assert real(opened[0]) == host.data
    assert host.run(opened, f"cat {link}/marker") == "checked\n"


def test_a_mount_is_refused_for_what_it_is_not_for_how_it_is_named(host: Host) -> None:
    (host.shared / "to-git").symlink_to(host.repo / ".git")
    (host.shared / "to-top").symlink_to(host.top)
    for bad in (host.shared / "to-git", host.shared / "to-top", host.repo / "sub"):
        with pytest.raises(MountRefused, match="overlaps the mission repo") as caught:
            open_mounts(host.sandbox(Mount(bad)))
        assert str(bad) in str(caught.value)
    with pytest.raises(MountRefused, match="does not exist on this machine"):
        open_mounts(host.sandbox(Mount(host.data), Mount(host.shared / "gone")))


def test_an_allowed_mount_binds_its_descriptor_and_refusing_one_leaves_nothing_open(
    host: Host, opened: list[Bind]
) -> None:
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(MountRefused):
        open_mounts(host.sandbox(Mount(host.data), Mount(host.repo / ".git")))
    assert set(os.listdir("/proc/self/fd")) <= before
    opened += open_mounts(host.sandbox(Mount(host.data)))
    args = bwrap_argv("bwrap", Sandbox(), host.ws, ["true"], None, opened)
    assert args[args.index("--ro-bind-fd") + 1 :][:2] == [str(opened[0].fd), str(host.data)]
    assert str(host.data) not in [args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"]


def test_the_agent_inherits_none_of_the_bound_descriptors(host: Host, opened: list[Bind]) -> None:
    """bwrap closes them before the agent runs: a directory descriptor inside would let the
    agent walk `..` out of its mount on the host."""
    mount = open_mounts(host.sandbox(Mount(host.data)))[0]
    high = Bind(os.dup2(mount.fd, 200, inheritable=False), mount.dest)
    os.close(mount.fd)
    opened.append(high)
    out = host.run(opened, "ls /proc/1/fd /proc/$$/fd")
    assert "200" not in out.split()


# --- the control plane's objects: drops, the workspace ----------------------------------------


def test_drops_are_opened_without_following_links_and_a_removed_one_is_left_out(
    host: Host, opened: list[Bind]
) -> None:
    drops = host.repo / ".mc" / "drops" / "ab"
    drops.mkdir(parents=True)
    (drops / "good").write_text("drop\n")
    opened += open_drops([drops / "good", drops / "gone"])
    assert [(real(b), b.dest, b.writable) for b in opened] == [
        (drops / "good", drops / "good", False)
    ]
    assert host.run(opened, f"cat {drops}/good; cat {drops}/gone 2>&1 || true").startswith("drop\n")
    (drops / "link").symlink_to(host.repo / ".git" / "config")
    os.mkfifo(drops / "fifo")  # opening it to read would block mc
    elsewhere = host.top / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x").write_text("not a drop\n")
    (drops.parent / "cd").symlink_to(elsewhere)
    before = set(os.listdir("/proc/self/fd"))
    for planted in (drops / "link", drops / "fifo", drops.parent / "cd" / "x"):
        with pytest.raises(PlantedLink):
            open_drops([drops / "good", planted])
    assert set(os.listdir("/proc/self/fd")) <= before


def test_a_workspace_swapped_for_a_link_is_refused(host: Host) -> None:
    ws = host.repo / ".mc" / "work" / "t" / "1"
    ws.mkdir(parents=True)
    bind = open_workspace(ws)
    try:
        assert (real(bind), bind.dest, bind.writable) == (ws, ws, True)
    finally:
        close_binds([bind])
    host.swap_for_link(ws, host.repo)
    with pytest.raises(PlantedLink):
        open_workspace(ws)


# --- through the executor --------------------------------------------------------------------


def test_a_run_leaves_no_descriptor_of_its_mounts_open_in_mc(
    executor: LocalExecutor, agents: Agents, tmp_path: Path
) -> None:
    shown = tmp_path / "shown"
    shown.mkdir()
    mounts = [Mount(Path(m["path"])) for m in interpreter_mounts()]
    code = "import json, os\njson.dump({'status': 'done'}, open(os.environ['MC_RESULT_JSON'], 'w'))"
    req = agents.request(code)
    sandbox = Sandbox(mounts=(*mounts, Mount(agents.root / "agents"), Mount(shown)))
    outcome = run_one(executor, replace(req, sandbox=sandbox))
    assert outcome.status == "done", outcome.error
    mine = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            mine.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    assert str(shown) not in mine
    assert not any(p.startswith(str(req.workspace)) for p in mine)
