"""The git source: which revision is read, what is dirty, and the blob cache of parsed files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.starter import GitRepo, task_yaml

import reconciler.repo.source as source
from reconciler.repo.source import MissionRepo, RepoError
from specs.errors import SpecError
from specs.loader import parse_file

TASK = "tasks/summarize-readme.yaml"


def prompt_of(repo: MissionRepo, rev: str | None) -> str:
    doc = repo.desired(rev).get("Task", "summarize-readme")
    assert doc is not None
    return str(doc.spec["prompt"])


@pytest.fixture
def history(mission_repo: GitRepo) -> GitRepo:
    """Two commits that differ in one prompt, and a third version only in the work tree."""
    mission_repo.replace(TASK, "prompt: Count", "prompt: v1 Count")
    mission_repo.commit("v1")
    mission_repo.replace(TASK, "prompt: v1", "prompt: v2")
    mission_repo.commit("v2")
    mission_repo.replace(TASK, "prompt: v2", "prompt: v3")
    return mission_repo


def test_head_rev_and_worktree_are_read_from_different_places(history: GitRepo) -> None:
    repo = MissionRepo(history.root)
    head = repo.desired("HEAD")
    assert head.commit == history.head()
    assert prompt_of(repo, "HEAD").startswith("v2 ")
    assert prompt_of(repo, "HEAD~1").startswith("v1 ")
    assert repo.desired("HEAD~1").commit == history.git("rev-parse", "HEAD~1")
    assert prompt_of(repo, None).startswith("v3 ")
    assert repo.desired(None).commit is None


def test_dirty_paths_name_uncommitted_mission_files_only(history: GitRepo) -> None:
    history.write("tasks/new.yaml", task_yaml("new"))  # untracked
    history.write("agents/helper.py", "print('not a spec')\n")
    history.write("README.md", "edited\n")
    history.write("notes/idea.yaml", "not: a mission dir\n")
    repo = MissionRepo(history.root)
    assert repo.dirty_paths() == ["tasks/new.yaml", TASK]
    assert repo.desired("HEAD").dirty_paths == ("tasks/new.yaml", TASK)
    assert repo.desired("HEAD~1").dirty_paths == ()  # dirt is relative to HEAD only


def test_a_staged_rename_reports_both_paths(mission_repo: GitRepo) -> None:
    mission_repo.git("mv", TASK, "tasks/renamed.yaml")
    assert MissionRepo(mission_repo.root).dirty_paths() == ["tasks/renamed.yaml", TASK]


def test_worktree_sees_deletions_and_ignores_non_spec_files(mission_repo: GitRepo) -> None:
    mission_repo.remove(TASK)
    mission_repo.write("agents/notes.txt", "ignored\n")
    desired = MissionRepo(mission_repo.root).desired(None)
    assert sorted(desired.docs) == ["Agent/summarizer", "Mission/my-mission"]
    assert MissionRepo(mission_repo.root).desired("HEAD").get("Task", "summarize-readme")


def test_spec_files_outside_the_mission_dirs_are_not_read(mission_repo: GitRepo) -> None:
    mission_repo.write("other/agent.yaml", "this: is not read\n")
    mission_repo.write("tasks/readme.txt", "neither is this\n")
    mission_repo.commit()
    assert len(MissionRepo(mission_repo.root).desired("HEAD").docs) == 3


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the source hands to the real parser."""
    calls: list[str] = []
    real: Callable[..., Any] = parse_file

    def spy(path: str, data: bytes) -> Any:
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(source, "parse_file", spy)
    return calls


def test_an_unchanged_file_is_never_parsed_twice(
    mission_repo: GitRepo, parse_calls: list[str]
) -> None:
    MissionRepo(mission_repo.root).desired("HEAD")
    assert sorted(parse_calls) == ["agents/summarizer.yaml", "mission.yaml", TASK]
    parse_calls.clear()
    MissionRepo(mission_repo.root).desired("HEAD")  # a new process would see the same cache
    assert parse_calls == []
    mission_repo.replace(TASK, "prompt: Count", "prompt: Please count")
    mission_repo.commit()
    desired = MissionRepo(mission_repo.root).desired("HEAD")
    assert parse_calls == [TASK]
    assert str(desired.docs["Task/summarize-readme"].spec["prompt"]).startswith("Please")
    parse_calls.clear()
    MissionRepo(mission_repo.root).desired("HEAD~1")  # the old blob is still cached
    MissionRepo(mission_repo.root).desired(None)  # work-tree files share blob ids with HEAD
    assert parse_calls == []


def test_cached_documents_keep_their_path_and_position(
    mission_repo: GitRepo, parse_calls: list[str]
) -> None:
    first = MissionRepo(mission_repo.root).desired("HEAD")
    second = MissionRepo(mission_repo.root).desired("HEAD")
    assert parse_calls and len(parse_calls) == 3
    assert second.docs == first.docs


def test_a_file_with_problems_is_parsed_again_and_reported_again(
    mission_repo: GitRepo, parse_calls: list[str]
) -> None:
    mission_repo.write("tasks/bad.yaml", "apiVersion: mc/v1\nkind: Task\nmetadata: {name: b\n")
    mission_repo.commit()
    for _ in range(2):
        with pytest.raises(SpecError, match=r"tasks/bad.yaml:4"):
            MissionRepo(mission_repo.root).desired("HEAD")
    assert parse_calls.count("tasks/bad.yaml") == 2


def test_a_corrupt_cache_is_ignored(mission_repo: GitRepo, parse_calls: list[str]) -> None:
    MissionRepo(mission_repo.root).desired("HEAD")
    (cache,) = (mission_repo.root / ".mc" / "cache").iterdir()
    cache.write_bytes(b"\x80\x04 not json")
    parse_calls.clear()
    assert len(MissionRepo(mission_repo.root).desired("HEAD").docs) == 3
    assert len(parse_calls) == 3


def test_state_dir_is_excluded_from_git_once(mission_repo: GitRepo) -> None:
    repo = MissionRepo(mission_repo.root)
    repo.ensure_mc_ignored()
    repo.ensure_mc_ignored()
    exclude = (mission_repo.root / ".git" / "info" / "exclude").read_text()
    assert exclude.split().count(".mc/") == 1
    (mission_repo.root / ".mc").mkdir(exist_ok=True)
    (mission_repo.root / ".mc" / "state.duckdb").write_bytes(b"x")
    assert mission_repo.git("status", "--porcelain") == ""


def test_not_a_repo_and_no_commits_are_repo_errors(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoError, match="not a git repository"):
        MissionRepo(plain)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    GitRepo(fresh).git("init", "-q")
    with pytest.raises(RepoError, match="no commits yet"):
        MissionRepo(fresh).desired("HEAD")
    with pytest.raises(RepoError, match="unknown revision 'nope'"):
        MissionRepo(fresh).resolve("nope")
