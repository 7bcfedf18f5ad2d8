"""The mission tree a sandbox binds: nothing from `.mc` down is followed, a link planted at a
tree path (an unconfined agent's doing) is refused and the run fails saying so, and an export
is reused only while it is mc's own read-only directory."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.agents import interpreter_mounts
from helpers.git import git
from helpers.mission_repo import commit_all
from runtime_harness import Agents, run_one

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.mission_tree import (
    UnsafeTree,
    ensure_tree,
    head_commit,
    open_tree,
    tree_path,
)
from reconciler.runtime.sandbox import MissionTree, Mount, Sandbox

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def tree(tmp_path: Path) -> MissionTree:
    root = tmp_path / "mission"
    root.mkdir()
    (root / "mission.yaml").write_text("kind: Mission\n")
    git(root, "init", "-q")
    commit_all(root, "mission")
    head = head_commit(root)
    assert head is not None
    return MissionTree(root, head, tree_path(root / ".mc", head))


def snapshot(top: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(top)): p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_file() and not p.is_symlink() and ".mc" not in p.relative_to(top).parts
    }


def test_the_export_is_opened_by_descriptor_and_reused(tree: MissionTree) -> None:
    fd = open_tree(tree)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == str(tree.path)
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    inode = tree.path.stat().st_ino
    ensure_tree(tree)
    assert tree.path.stat().st_ino == inode
    assert [p.name for p in tree.path.parent.iterdir()] == [tree.commit]


def test_a_link_planted_at_a_future_commits_tree_path_is_refused(tree: MissionTree) -> None:
    before = snapshot(tree.repo)
    tree.path.parent.mkdir(parents=True)
    tree.path.symlink_to(tree.repo)  # the repo, .git and all, would be the agent's tree
    with pytest.raises(UnsafeTree, match="symlink"):
        open_tree(tree)
    assert tree.path.is_symlink() and os.readlink(tree.path) == str(tree.repo)
    assert snapshot(tree.repo) == before
    assert [p.name for p in tree.path.parent.iterdir()] == [tree.commit]  # no temp dir left


def test_a_link_planted_in_place_of_the_trees_folder_is_refused(
    tree: MissionTree, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tree.repo / ".mc").mkdir()
    tree.path.parent.symlink_to(elsewhere)
    with pytest.raises(UnsafeTree, match="symlink"):
        open_tree(tree)
    assert list(elsewhere.iterdir()) == []  # nothing exported through the link


def test_a_tree_made_writable_is_not_reused(tree: MissionTree) -> None:
    ensure_tree(tree)
    tree.path.chmod(0o755)  # someone (an unconfined agent) reopened it for writing
    with pytest.raises(UnsafeTree, match="writable"):
        open_tree(tree)


def test_a_directory_planted_before_the_export_is_not_reused(tree: MissionTree) -> None:
    tree.path.mkdir(parents=True)
    (tree.path / "mission.yaml").write_text("kind: Mission\nspec: {planted: true}\n")
    with pytest.raises(UnsafeTree, match="writable"):
        open_tree(tree)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_tree_owned_by_another_user_is_not_reused(tree: MissionTree) -> None:
    ensure_tree(tree)
    os.chown(tree.path, 4242, 4242)
    with pytest.raises(UnsafeTree, match="owned by uid 4242"):
        open_tree(tree)


def test_a_sandboxed_run_over_a_planted_tree_fails_saying_why(
    executor: LocalExecutor, agents: Agents, tree: MissionTree
) -> None:
    tree.path.parent.mkdir(parents=True)
    tree.path.symlink_to(tree.repo)
    mounts = [Mount(Path(m["path"])) for m in interpreter_mounts()]
    code = "import json, os\njson.dump({'status': 'done'}, open(os.environ['MC_RESULT_JSON'], 'w'))"
    req = agents.request(code)
    sandbox = Sandbox(tree=tree, mounts=(*mounts, Mount(agents.root / "agents")))
    outcome = run_one(executor, replace(req, sandbox=sandbox))
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith(f"unsafe mission tree: {tree.path} is a symlink"), outcome
