"""How mc calls git: one argv prefix and environment that no repository file can steer.

Every git process mc starts comes from here (the git source, signature checks, approvals,
the tree export, `mc init`, `mc approve`). A mission repo's own `.git/config` — writable by
anyone who could write the repo, including an unconfined agent — must not be able to run a
program inside mc (hooks, fsmonitor, a pager, an external diff, a fake `ssh-keygen` or `gpg`
that "verifies" any signature) or change what is read (replace refs, grafts). So each call
overrides those settings on the command line, where they win over every config file, turns
off the system config, replace objects and grafts, and passes an environment that holds no
secret of mc's. Settings sourced from git's documentation (git-config(1), git(1)).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def _program(name: str) -> str:
    """mc's own copy of a program git would otherwise take from the repo's config."""
    return shutil.which(name) or name


def safe_config() -> list[str]:
    """`-c key=value` pairs that beat any config file for the settings that run programs."""
    pairs = {
        "core.hooksPath": os.devnull,
        "core.fsmonitor": "false",
        "core.pager": "cat",
        "core.sshCommand": "false",
        "core.askPass": "",
        "credential.helper": "",
        "diff.external": "",
        "gpg.program": _program("gpg"),
        "gpg.ssh.program": _program("ssh-keygen"),
        "gpg.x509.program": _program("gpgsm"),
        "gpg.ssh.defaultKeyCommand": "",
        "uploadpack.packObjectsHook": "",
        "protocol.allow": "never",
    }
    out: list[str] = []
    for key, value in pairs.items():
        out += ["-c", f"{key}={value}"]
    return out


def git_argv(root: Path | str, *args: str, config: Sequence[str] = ()) -> list[str]:
    """`git -C root` with the safe settings (then `config`, more `-c` pairs), then `args`."""
    return ["git", "--no-replace-objects", "-C", str(root), *safe_config(), *config, *args]


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a git call: a few of mc's variables, no system config, no grafts."""
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_GRAFT_FILE": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ATTR_NOSYSTEM": "1",
        }
    )
    env.update(extra or {})
    return env
