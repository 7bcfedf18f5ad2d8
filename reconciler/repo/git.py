"""How mc calls git: one argv prefix and environment that no repository file can steer.

Every git process mc starts comes from here (the git source, signature checks, approvals,
the tree export, `mc init`, `mc approve`, `mc run`). A mission repo's own `.git/config` and
`.git/` files — writable by anyone who could write the repo, including an unconfined agent —
must not be able to run a program inside mc (hooks, fsmonitor, a pager, an external diff, a
filter driver, a fake `ssh-keygen` or `gpg` that "verifies" any signature) or change what is
read (replace refs, grafts, a planted `shallow` file or commit-graph). So each call overrides
those settings on the command line, where they win over every config file, turns off the
system config, replace objects, grafts and the shallow file, and passes an environment that
holds no secret of mc's. Settings sourced from git's documentation (git-config(1), git(1)).

Signature checks run mc's own `gpg`/`ssh-keygen` (absolute paths, resolved once). The one
exception is `mc approve`'s signed commit (`signing=True`): it is the user's own commit, so it
may use the signing program of the user's *global* git config (a 1Password or hardware-token
helper, say) and reach their ssh-agent or gpg-agent; the repo's own config still cannot choose
a program, and hooks, filters and fsmonitor stay off for it too.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from specs.errors import MCError

# Inherited by git from mc's environment; nothing else (no tokens, no keys).
_PASSED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "GIT_CONFIG_GLOBAL",  # the user's own config (not the repo's), or a test's isolation
)
# Who makes a commit mc writes for the user (`mc init`, `mc run`, `mc approve`).
_IDENTITY_ENV = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
)
# What the user's own signed commit needs besides: their signing agents.
_SIGNING_ENV = (
    "GNUPGHOME",
    "GPG_TTY",
    "SSH_AUTH_SOCK",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
)
SIGNING_PROGRAMS = ("gpg.program", "gpg.openpgp.program", "gpg.ssh.program", "gpg.x509.program")
# Commands that may convert file content through the repo's attributes (filter drivers).
_CONVERTING = frozenset(("add", "archive", "commit", "status", "checkout", "diff", "show"))


class GitError(MCError):
    """A git command mc ran failed; the message is git's own, in one line."""


@functools.cache
def program(name: str) -> str:
    """mc's own copy of a program git would otherwise take from a config file: its absolute
    path on mc's PATH, resolved once per process (the name itself when it is not installed,
    so git's error names it)."""
    found = shutil.which(name)
    return os.path.abspath(found) if found else name


def safe_config() -> list[str]:
    """`-c key=value` pairs that beat any config file for the settings that run programs or
    change what git reads and prints."""
    pairs = {
        "core.hooksPath": os.devnull,
        "core.fsmonitor": "false",
        "core.pager": "cat",
        "core.sshCommand": "false",
        "core.askPass": "",
        "core.attributesFile": os.devnull,
        "core.commitGraph": "false",  # a planted commit-graph could lie about parents
        "credential.helper": "",
        "diff.external": "",
        "gpg.program": program("gpg"),
        "gpg.openpgp.program": program("gpg"),
        "gpg.ssh.program": program("ssh-keygen"),
        "gpg.x509.program": program("gpgsm"),
        "gpg.ssh.defaultKeyCommand": "",
        "uploadpack.packObjectsHook": "",
        "protocol.allow": "never",
        "log.showSignature": "false",  # verification text must not mix into parsed output
        "color.ui": "false",
        "i18n.logOutputEncoding": "UTF-8",
        "gc.auto": "0",  # mc never repacks a user's repo behind their back
        "maintenance.auto": "false",
    }
    out: list[str] = []
    for key, value in pairs.items():
        out += ["-c", f"{key}={value}"]
    return out


def git_argv(root: Path | str, *args: str, config: Sequence[str] = ()) -> list[str]:
    """`git -C root` with the safe settings (then `config`, more `-c` pairs), then `args`.

    For commands that convert content (add, commit, status, archive, …) every filter driver
    the repo's config declares is emptied too, so no clean/smudge/process program runs."""
    drivers = neutral_filters(root) if args and args[0] in _CONVERTING else []
    return [
        "git",
        "--no-replace-objects",
        "-C",
        str(root),
        *safe_config(),
        *drivers,
        *config,
        *args,
    ]


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a git call: a few of mc's variables, no system config, no grafts,
    no shallow file (objects are read as they are)."""
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_GRAFT_FILE": os.devnull,
            "GIT_SHALLOW_FILE": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ATTR_NOSYSTEM": "1",
        }
    )
    env.update(extra or {})
    return env


def neutral_filters(root: Path | str) -> list[str]:
    """`-c filter.<name>.{clean,smudge,process}=` (empty: no program) for every filter driver
    the repo's config files name; reading config runs nothing."""
    proc = subprocess.run(
        git_argv(root, "config", "--null", "--name-only", "--get-regexp", r"^filter\."),
        capture_output=True,
        env=git_env(),
        check=False,
    )
    names = {
        key.rsplit(".", 1)[0]
        for key in proc.stdout.decode("utf-8", "replace").split("\0")
        if key.count(".") >= 2
    }
    out: list[str] = []
    for name in sorted(names):
        for field in ("clean", "smudge", "process"):
            out += ["-c", f"{name}.{field}="]
        out += ["-c", f"{name}.required=false"]
    return out


def signing_config(root: Path | str) -> list[str]:
    """The user's own signing programs from their global git config (never the repo's), as
    `-c` pairs that replace mc's defaults for a commit the user signs."""
    out: list[str] = []
    for key in SIGNING_PROGRAMS:
        proc = subprocess.run(
            git_argv(root, "config", "--global", "--get", key),
            capture_output=True,
            env=git_env(),
            check=False,
        )
        value = proc.stdout.decode("utf-8", "replace").strip()
        if proc.returncode == 0 and value:
            out += ["-c", f"{key}={value}"]
    return out


def run_git(root: Path | str, *args: str, check: bool = True, signing: bool = False) -> str | None:
    """Run `git args` in `root` the safe way, as the user (their name and email); its stripped
    stdout, or None when it failed and `check` is False. `signing`: the user's own signed
    commit (see the module docstring). Raises GitError with git's message."""
    passed = _IDENTITY_ENV + (_SIGNING_ENV if signing else ())
    proc = subprocess.run(
        git_argv(root, *args, config=signing_config(root) if signing else ()),
        capture_output=True,
        env=git_env({k: v for k, v in os.environ.items() if k in passed}),
        check=False,
    )
    if proc.returncode != 0:
        if check:
            raise GitError(
                proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed"
            )
        return None
    return proc.stdout.decode("utf-8", "replace").strip()
