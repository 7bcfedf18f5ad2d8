"""The bubblewrap command line of one run, mount refusals and bwrap's exit codes, as plain data
(no process is started here: test_sandbox_runs.py runs real sandboxes, test_sandbox_binds.py
binds swapped paths)."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.runtime.sandbox import (
    HOSTNAME,
    Bind,
    Limits,
    MissionTree,
    Mount,
    Sandbox,
    bwrap_argv,
    close_binds,
    launch_failure,
    open_mounts,
    prlimit_argv,
    refused_mount,
    sandbox_exit_code,
)

WS = Path("/srv/mission/.mc/work/t/1")


def argv(
    sandbox: Sandbox, home: str | None = None, binds: tuple[Bind, ...] = (), ws: Path | Bind = WS
) -> list[str]:
    return bwrap_argv("/usr/bin/bwrap", sandbox, ws, ["python3", "agent.py"], home, binds)


def pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    """(source, dest) of every `flag SRC DEST` in args."""
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


def real(fd: str) -> str:
    """What an fd in an argv is, as the kernel names it."""
    return os.readlink(f"/proc/self/fd/{fd}")


def test_every_namespace_is_new_and_the_network_is_off_by_default() -> None:
    args = argv(Sandbox())
    assert args[:2] == ["/usr/bin/bwrap", "--unshare-all"]
    assert args[args.index("--cap-drop") + 1] == "ALL"  # no capability left inside, even as root
    assert {"--die-with-parent", "--new-session"} <= set(args[: args.index("--hostname")])
    assert "--share-net" not in args
    assert args[args.index("--hostname") + 1] == HOSTNAME
    assert "--share-net" in argv(Sandbox(network=True))


def test_private_proc_dev_tmp_and_read_only_system_dirs() -> None:
    args = argv(Sandbox())
    for flag, path in (("--proc", "/proc"), ("--dev", "/dev"), ("--tmpfs", "/tmp")):
        assert args[args.index(flag) + 1] == path
    bound = dict(pairs(args, "--ro-bind"))
    linked = {dest: target for target, dest in pairs(args, "--symlink")}
    for system in ("/usr", "/etc"):
        assert bound.get(system) == system
    for merged in ("/bin", "/lib"):  # merged /usr here: recreated as the same links
        assert merged in linked or bound.get(merged) == merged
    assert "/root" not in bound and "/home" not in bound


def test_the_command_runs_last_in_the_writable_workspace() -> None:
    args = argv(Sandbox(), ws=Bind(9, WS, writable=True))
    cut = args.index("--")
    assert args[cut + 1 :] == ["python3", "agent.py"]
    assert args[cut - 5 : cut] == ["--bind-fd", "9", str(WS), "--chdir", str(WS)]
    by_path = argv(Sandbox())  # mc doctor's own temp dir, which no agent can reach
    assert by_path[by_path.index("--") - 5 :][:3] == ["--bind", str(WS), str(WS)]


def test_the_tree_and_drops_are_bound_read_only_by_descriptor_at_their_own_paths() -> None:
    tree = MissionTree(Path("/srv/mission"), "c0ffee", Path("/srv/mission/.mc/trees/c0ffee"))
    drop = Path("/srv/mission/.mc/drops/ab/abcd")
    binds = (Bind(7, tree.path), Bind(8, drop))
    args = argv(Sandbox(tree=tree, read_only=(drop,)), binds=binds)
    assert pairs(args, "--ro-bind-fd") == [("7", str(tree.path)), ("8", str(drop))]
    bound_paths = {dest for _src, dest in pairs(args, "--ro-bind") + pairs(args, "--bind")}
    assert not bound_paths & {str(tree.path), str(drop), "/srv/mission"}  # never by path
    assert "--ro-bind-try" not in args


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[Bind]]:
    """Descriptors a test opens, closed after it."""
    binds: list[Bind] = []
    yield binds
    close_binds(binds)


def test_mounts_keep_their_mode_and_parents_are_bound_before_children(
    tmp_path: Path, opened: list[Bind]
) -> None:
    outer, inner = tmp_path / "data", tmp_path / "data" / "out"
    inner.mkdir(parents=True)
    opened += open_mounts(Sandbox(mounts=(Mount(inner, writable=True), Mount(outer))))
    args = argv(Sandbox(), binds=tuple(opened))
    [(rw_fd, rw_dest)] = pairs(args, "--bind-fd")
    [(ro_fd, ro_dest)] = pairs(args, "--ro-bind-fd")
    assert (real(rw_fd), rw_dest) == (str(inner), str(inner))
    assert (real(ro_fd), ro_dest) == (str(outer), str(outer))
    assert args.index(ro_fd) < args.index(rw_fd)
    assert str(inner) not in [src for src, _dest in pairs(args, "--bind")]  # not by path


def test_a_symlinked_mount_binds_its_target_at_the_declared_path(
    tmp_path: Path, opened: list[Bind]
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    opened += open_mounts(Sandbox(mounts=(Mount(tmp_path / "link"),)))
    [(fd, dest)] = pairs(argv(Sandbox(), binds=tuple(opened)), "--ro-bind-fd")
    assert (real(fd), dest) == (str(tmp_path / "real"), str(tmp_path / "link"))


@pytest.mark.parametrize(
    ("home", "private"),
    [("/root", True), ("/home/ada", True), ("/", False), ("/tmp/x", False), ("/usr/x", False)],
)
def test_home_is_a_private_empty_tmpfs(home: str, private: bool) -> None:
    args = argv(Sandbox(), home)
    tmpfs = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]
    assert (home in tmpfs) == private


# --- mounts a spec may not have ---------------------------------------------------------------


def test_mounts_that_overlap_the_repo_or_do_not_exist_are_refused(tmp_path: Path) -> None:
    repo = tmp_path / "mission"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "sneaky").symlink_to(repo / ".git")

    def refused(path: Path) -> str | None:
        return refused_mount(Sandbox(mounts=(Mount(path, writable=True),), protected=(repo,)))

    assert refused(tmp_path / "data") is None
    for bad in (repo, tmp_path, repo / ".git", repo / ".mc", tmp_path / "sneaky"):
        reason = refused(bad)
        assert reason is not None and "overlaps the mission repo" in reason, bad
        assert str(bad) in reason
    missing = refused(tmp_path / "nowhere")
    assert missing == f"mount {tmp_path / 'nowhere'} does not exist on this machine"


# --- what bwrap's exit says ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bwrap_rc", "popen_rc"), [(0, 0), (3, 3), (128 + 11, -11), (128 + 9, -9), (-9, -9), (255, 255)]
)
def test_an_agent_killed_by_a_signal_reads_as_it_does_unconfined(
    bwrap_rc: int, popen_rc: int
) -> None:
    assert sandbox_exit_code(bwrap_rc) == popen_rc


def test_bwrap_launch_failures_read_as_launch_errors() -> None:
    missing = "bwrap: execvp no-such-agent: No such file or directory"
    assert launch_failure(1, missing, "no-such-agent") == (
        "failed",
        "agent command not found: no-such-agent",
    )
    denied = "bwrap: execvp /x/agent.py: Permission denied"
    assert launch_failure(1, denied, "/x/agent.py") == (
        "failed",
        "agent command not executable (permission denied): /x/agent.py",
    )
    setup = "bwrap: Can't find source path /gone: No such file or directory"
    assert launch_failure(1, setup, "a") == (
        "failed",
        "the sandbox could not start: Can't find source path /gone: No such file or directory",
    )
    lost = "bwrap: Can't find source path /proc/self/fd/10: No such file or directory"
    assert launch_failure(1, lost, "a") == (
        "retry",  # a passed descriptor went missing: a fresh start opens new ones
        "the sandbox could not start: " + lost.removeprefix("bwrap: "),
    )
    busy = "bwrap: Creating new namespace failed: Resource temporarily unavailable"
    assert launch_failure(1, busy, "a") == (
        "retry",
        "the sandbox could not start: " + busy.removeprefix("bwrap: "),
    )
    assert launch_failure(2, missing, "a") is None  # the agent's own exit
    assert launch_failure(1, "Traceback: boom", "a") is None


def test_a_program_the_host_has_but_the_sandbox_does_not_show_says_so(tmp_path: Path) -> None:
    program = tmp_path / "agent"
    program.write_text("#!/bin/sh\n")
    line = f"bwrap: execvp {program}: No such file or directory"
    found = launch_failure(1, line, str(program))
    assert found is not None
    assert found[1].startswith(f"agent command not found: {program} (it exists on the host")


def test_limits_are_set_only_where_given() -> None:
    assert dict(Limits().pairs()) == {
        resource.RLIMIT_NOFILE: 4096,
        resource.RLIMIT_FSIZE: 1 << 30,
    }
    limits = Limits(memory_bytes=1 << 29, processes=64, open_files=None, cpu_seconds=5)
    assert dict(limits.pairs()) == {
        resource.RLIMIT_AS: 1 << 29,
        resource.RLIMIT_NPROC: 64,
        resource.RLIMIT_FSIZE: 1 << 30,
        resource.RLIMIT_CPU: 5,
    }


def test_prlimit_sets_each_limit_soft_and_hard_then_execs_bwrap() -> None:
    limits = Limits(memory_bytes=1 << 29, open_files=64, file_size_bytes=1000, cpu_seconds=5)
    assert prlimit_argv("/usr/bin/prlimit", limits) == [
        "/usr/bin/prlimit",
        f"--as={1 << 29}:{1 << 29}",
        "--nofile=64:64",
        "--fsize=1000:1000",
        "--cpu=5:5",
        "--",
    ]
