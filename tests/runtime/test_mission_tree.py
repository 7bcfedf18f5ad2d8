"""The applied mission tree: one commit exported once into .mc/trees/<commit>/, read-only,
without `.git` or a committed `.mc/`, reused by later runs; a bad commit is an error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers.git import git
from helpers.mission_repo import commit_all

from reconciler.runtime.mission_tree import TreeExportError, ensure_tree, head_commit, tree_path
from reconciler.runtime.sandbox import MissionTree


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "mission"
    (root / "agents").mkdir(parents=True)
    (root / "agents" / "a.py").write_text("print('a')\n")
    (root / "agents" / "run.sh").write_text("#!/bin/sh\n")
    (root / "agents" / "run.sh").chmod(0o755)
    (root / "mission.yaml").write_text("kind: Mission\n")
    git(root, "init", "-q")
    commit_all(root, "mission")
    return root


def export(repo: Path, commit: str) -> Path:
    tree = MissionTree(repo, commit, tree_path(repo / ".mc", commit))
    ensure_tree(tree)
    return tree.path


def test_the_commit_is_exported_read_only_without_git(repo: Path) -> None:
    head = head_commit(repo)
    assert head is not None
    path = export(repo, head)
    assert path == repo / ".mc" / "trees" / head
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) == [
        "agents",
        "agents/a.py",
        "agents/run.sh",
        "mission.yaml",
    ]
    assert (path / "agents" / "a.py").read_text() == "print('a')\n"
    for p in (path, path / "agents", path / "agents" / "a.py"):
        assert stat.S_IMODE(p.stat().st_mode) & 0o222 == 0, p
    assert os.access(path / "agents" / "run.sh", os.X_OK)  # modes kept, less the write bits
    assert [p.name for p in path.parent.iterdir()] == [head]  # no temp dir left behind


def test_a_committed_mc_dir_and_uncommitted_edits_are_left_out(repo: Path) -> None:
    (repo / ".mc").mkdir()
    (repo / ".mc" / "state.duckdb").write_text("not for agents")
    git(repo, "add", "-f", ".mc/state.duckdb")
    head = commit_all(repo, "oops")
    (repo / "mission.yaml").write_text("edited, not committed\n")
    path = export(repo, head)
    assert not (path / ".mc").exists()
    assert (path / "mission.yaml").read_text() == "kind: Mission\n"


def test_an_export_is_made_once_and_reused(repo: Path) -> None:
    head = head_commit(repo)
    assert head is not None
    first = export(repo, head)
    inode = first.stat().st_ino
    export(repo, head)
    assert first.stat().st_ino == inode


def test_an_unknown_commit_is_an_error_and_leaves_nothing(repo: Path) -> None:
    with pytest.raises(TreeExportError, match=f"exporting {'0' * 40} with git"):
        export(repo, "0" * 40)
    assert list((repo / ".mc" / "trees").iterdir()) == []


def test_a_repo_without_commits_has_no_head(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert head_commit(tmp_path) is None
