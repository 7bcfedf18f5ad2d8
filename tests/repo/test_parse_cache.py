"""The parse cache is data, not code: what anything left in `.mc/cache` can and cannot do."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

from helpers.starter import GitRepo

from reconciler.repo.parse_cache import ParseCache
from reconciler.repo.source import MissionRepo

TASK_KEY = "Task/summarize-readme"


class _RunsCode:
    """A pickle that, when loaded, creates a marker file (as `os.system` would run anything)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.makedirs, (str(self.marker), "0o755"))


def cache_dir(repo: GitRepo) -> Path:
    return repo.root / ".mc" / "cache"


def the_cache_file(repo: GitRepo) -> Path:
    (path,) = [p for p in cache_dir(repo).iterdir() if p.suffix == ".json"]
    return path


def test_a_pickle_planted_in_the_cache_is_never_loaded(mission_repo: GitRepo) -> None:
    marker = mission_repo.root.parent / "pwned"
    cache_dir(mission_repo).mkdir(parents=True)
    bomb = pickle.dumps(_RunsCode(marker))
    for name in ("specs-v3.pickle", ParseCache.in_dir(cache_dir(mission_repo)).path.name):
        (cache_dir(mission_repo) / name).write_bytes(bomb)
    desired = MissionRepo(mission_repo.root).desired("HEAD")
    assert TASK_KEY in desired.docs
    assert not marker.exists()
    assert json.loads(the_cache_file(mission_repo).read_text())["format"] == "mc-parse-cache"


def test_an_edited_entry_throws_the_whole_cache_away(mission_repo: GitRepo) -> None:
    MissionRepo(mission_repo.root).desired("HEAD")
    path = the_cache_file(mission_repo)
    body = json.loads(path.read_text())
    for docs in body["entries"].values():
        for doc in docs:
            if doc[0] == "Task":
                doc[3]["prompt"] = "forged prompt"  # digest left as it was
    path.write_text(json.dumps(body))
    assert ParseCache(path).entries == {}
    desired = MissionRepo(mission_repo.root).desired("HEAD")
    assert desired.docs[TASK_KEY].spec["prompt"] != "forged prompt"


def test_a_cache_of_another_shape_is_discarded(mission_repo: GitRepo) -> None:
    MissionRepo(mission_repo.root).desired("HEAD")
    path = the_cache_file(mission_repo)
    good = json.loads(path.read_text())
    for bad in (
        {**good, "version": 3},
        {**good, "extra": 1},
        {**good, "entries": {"abc": [["Task", "t", {}, {}, "sha256:x"]]}},  # 5 fields, not 6
        [good],
        "[" * 100_000,
    ):
        path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
        assert ParseCache(path).entries == {}
    assert ParseCache(path.with_name("missing.json")).entries == {}


def test_a_planted_symlink_is_neither_read_nor_written_through(
    mission_repo: GitRepo, tmp_path: Path
) -> None:
    MissionRepo(mission_repo.root).desired("HEAD")
    path = the_cache_file(mission_repo)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(path.read_text())
    path.unlink()
    path.symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    cache = ParseCache(path)
    assert cache.entries == {}  # not read through the link
    MissionRepo(mission_repo.root).desired("HEAD")  # parses again and saves
    assert not path.is_symlink()
    assert elsewhere.read_bytes() == before
    assert ParseCache(path).entries  # the new file is a good cache
    assert not [p for p in cache_dir(mission_repo).iterdir() if p.name.endswith(".tmp")]
