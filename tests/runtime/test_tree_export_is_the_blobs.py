"""The mission tree an agent runs is the commit's blobs byte for byte: no attribute of the
commit (`export-subst`, `ident`, eol, `export-ignore`) or the repo's `.git/info/attributes`
rewrites or drops a file, so the blob ids in an agent's digest are what it runs."""

from __future__ import annotations

import os
from pathlib import Path

from helpers.git import git
from helpers.mission_repo import commit_all

from reconciler.runtime.mission_tree import ensure_tree, tree_path
from reconciler.runtime.sandbox import MissionTree

APPROVED = 'print("$Format:%s$ $Id$")\r\n'


def export(repo: Path, commit: str) -> Path:
    tree = MissionTree(repo, commit, tree_path(repo / ".mc", commit))
    ensure_tree(tree)
    return tree.path


def test_attributes_of_a_later_commit_rewrite_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "mission"
    (repo / "agents").mkdir(parents=True)
    (repo / "agents" / "run.py").write_bytes(APPROVED.encode())
    (repo / "agents" / "tool.sh").write_text("#!/bin/sh\n")
    (repo / "agents" / "tool.sh").chmod(0o755)
    os.symlink("run.py", repo / "agents" / "alias.py")
    git(repo, "init", "-q")
    commit_all(repo, "approved agent")
    # an unsigned commit: attributes that would inject its own subject into run.py
    (repo / ".gitattributes").write_text(
        "*.py export-subst ident text eol=lf working-tree-encoding=UTF-16\n*.sh export-ignore\n"
    )
    git(repo, "add", ".gitattributes")  # only it: the approved files stay as they were
    git(repo, "commit", "-q", "-m", 'x"); import os; os.system("id"); print("')
    head = git(repo, "rev-parse", "HEAD")
    (repo / ".git" / "info" / "attributes").write_text("* export-subst\n")

    path = export(repo, head)

    assert (path / "agents" / "run.py").read_bytes() == APPROVED.encode()
    assert git(repo, "rev-parse", f"{head}:agents/run.py") == git(
        repo, "hash-object", "--no-filters", str(path / "agents" / "run.py")
    )
    assert os.access(path / "agents" / "tool.sh", os.X_OK)  # kept, and still executable
    assert os.readlink(path / "agents" / "alias.py") == "run.py"
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) == [
        ".gitattributes",
        "agents",
        "agents/alias.py",
        "agents/run.py",
        "agents/tool.sh",
    ]
