"""Bad input through the real CLI: exit 1, one `error:` line per problem, no traceback, and
the state file left byte-identical."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from helpers.starter import GitRepo, agent_yaml, mc, sha256_of, task_yaml

CYCLE = (
    task_yaml("a", extra="  depends_on: [b]\n")
    + "---\n"
    + task_yaml("b", extra="  depends_on: [c]\n")
    + "---\n"
    + task_yaml("c", extra="  depends_on: [a]\n")
)
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [
        f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)
FIFTY_MB = task_yaml("big") + "  inputs: {blob: " + "x" * (50 * 1024 * 1024) + "}\n"


@dataclass(frozen=True)
class Bad:
    name: str
    files: dict[str, str | bytes | None]  # None: delete the file
    expected: list[str]  # one regex per problem line, after "error: "


# Problems found in one file at a time. They are all reported together, so one run covers
# them all ("several problems in several files, all in one run"); each case owns its files.
IN_FILES = [
    Bad(
        "malformed YAML",
        {"tasks/bad.yaml": "apiVersion: mc/v1\nkind: Task\nmetadata: {name: a\n"},
        [r"tasks/bad\.yaml:4:1: invalid YAML: .*"],
    ),
    Bad(
        "wrong types",
        {"agents/w.yaml": agent_yaml("w", command="python3 w.py", extra="  concurrency: many\n")},
        [
            r"agents/w\.yaml:6:3: spec\.command: .*list.*",
            r"agents/w\.yaml:7:3: spec\.concurrency: .*integer.*",
        ],
    ),
    Bad(
        "unknown kind",
        {"agents/robot.yaml": agent_yaml("r").replace("kind: Agent", "kind: Robot")},
        [r"agents/robot\.yaml:2:1: unknown kind 'Robot' \(hint: one of Mission, Agent, .*\)"],
    ),
    Bad(
        "unknown field",
        {"agents/typo.yaml": agent_yaml("typo", extra="  comand: [oops]\n")},
        [r"agents/typo\.yaml:7:3: unknown field `spec\.comand` \(hint: did you mean `command`\?\)"],
    ),
    Bad(
        "bytes that are not UTF-8",
        {"tasks/latin1.yaml": task_yaml("latin1").encode() + b"  role: caf\xe9\n"},
        [r"tasks/latin1\.yaml:8: not UTF-8 text \(byte 0xe9\)"],
    ),
    Bad("an empty file", {"tasks/empty.yaml": ""}, [r"tasks/empty\.yaml: file is empty.*"]),
    Bad(
        "a YAML alias bomb",
        {"tasks/bomb.yaml": ALIAS_BOMB},
        [r"tasks/bomb\.yaml: YAML aliases expand to too many nodes.*"],
    ),
    Bad(
        "a 50 MB file",
        {"tasks/big.yaml": FIFTY_MB},
        [r"tasks/big\.yaml: file is 50\.0 MB; the limit is 10 MB"],
    ),
    Bad(
        "names that are paths",
        {"tasks/up.yaml": task_yaml("../../etc"), "tasks/sub.yaml": task_yaml("a/b")},
        [
            r"tasks/sub\.yaml:3:\d+: metadata\.name: invalid name 'a/b'.*",
            r"tasks/up\.yaml:3:\d+: metadata\.name: invalid name '\.\./\.\./etc'.*",
        ],
    ),
]
# Problems between documents, checked once every file parses.
ACROSS_FILES = [
    Bad(
        "the same name in two files",
        {"agents/zz-copy.yaml": agent_yaml("summarizer")},
        [
            r"agents/zz-copy\.yaml:3:\d+: duplicate Agent/summarizer"
            r" \(first in agents/summarizer\.yaml\)"
        ],
    ),
    Bad(
        "a task dependency cycle",
        {"tasks/cycle.yaml": CYCLE},
        [r"tasks/cycle\.yaml:8:3: dependency cycle: a → b → c → a"],
    ),
    Bad(
        "a task naming an agent that does not exist",
        {"tasks/orphan.yaml": task_yaml("orphan", agent="sumarizer")},
        [
            r"tasks/orphan\.yaml:6:3: unknown agent 'sumarizer'"
            r" \(hint: did you mean 'summarizer'\?\)"
        ],
    ),
]
NO_MISSION = [
    Bad(
        "no mission.yaml",
        {"mission.yaml": None},
        [r"mission\.yaml: missing in commit [0-9a-f]{12} \(hint: .*mc init.*\)"],
    )
]
GROUPS = {"in files": IN_FILES, "across files": ACROSS_FILES, "no mission": NO_MISSION}


def assert_problems(proc: subprocess.CompletedProcess[str], expected: list[str]) -> None:
    """Exit 1, no traceback, and exactly one `error:` line per expected problem, in order."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(expected), proc.stderr
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch("error: " + pattern, line), (line, pattern)


def write_cases(repo: GitRepo, cases: list[Bad]) -> list[str]:
    """Write every case's files and commit; the expected lines in output order (by path)."""
    expected: list[tuple[str, str]] = []
    for case in cases:
        for rel, content in case.files.items():
            if content is None:
                repo.remove(rel)
            else:
                repo.write(rel, content)
        expected.extend((re.sub(r"\\(.)", r"\1", p.split(":")[0]), p) for p in case.expected)
    repo.commit(", ".join(c.name for c in cases))
    return [pattern for _, pattern in sorted(expected, key=lambda e: e[0])]


@pytest.mark.parametrize("group", list(GROUPS), ids=list(GROUPS))
def test_bad_mission_files_are_reported_and_change_nothing(
    applied_repo: GitRepo, group: str
) -> None:
    expected = write_cases(applied_repo, GROUPS[group])
    before = sha256_of(applied_repo.state_file)
    assert_problems(mc("apply", "--auto-approve", cwd=applied_repo.root), expected)
    assert sha256_of(applied_repo.state_file) == before


def test_validate_reports_each_problem_once_for_head_and_worktree(applied_repo: GitRepo) -> None:
    expected = write_cases(applied_repo, [IN_FILES[0], IN_FILES[1], IN_FILES[3]])
    assert_problems(mc("validate", cwd=applied_repo.root), expected)
    assert_problems(mc("validate", "--worktree", cwd=applied_repo.root), expected)


def test_mc_debug_shows_the_traceback(applied_repo: GitRepo) -> None:
    applied_repo.write("tasks/bad.yaml", "kind: [\n")
    applied_repo.commit()
    env = {**os.environ, "MC_DEBUG": "1"}
    proc = mc("validate", cwd=applied_repo.root, env=env)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "SpecError" in proc.stderr
    assert "tasks/bad.yaml:2:1" in proc.stderr


def test_a_directory_that_is_not_a_git_repo(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "mission.yaml").write_text("kind: Mission\n")
    assert_problems(
        mc("plan", cwd=plain), [r"\.: not a git repository \(create one with `mc init \.`\)"]
    )
    assert_problems(
        mc("-C", str(plain), "validate", cwd=tmp_path),
        [re.escape(str(plain)) + r": not a git repository.*"],
    )
    assert not (plain / ".mc").exists()


def test_a_repo_without_commits(tmp_path: Path) -> None:
    fresh = GitRepo(tmp_path / "fresh")
    fresh.root.mkdir()
    fresh.git("init", "-q")
    fresh.write("mission.yaml", "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: m}\n")
    assert_problems(mc("plan", cwd=fresh.root), [r".*: no commits yet; .*--worktree.*"])
    assert not fresh.state_file.exists()


# --- a state file that cannot be used ------------------------------------------------------


def assert_state_refused(repo: GitRepo, expected: str) -> None:
    """Both a reader (plan) and a writer (apply) refuse, and neither touches the file."""
    before = sha256_of(repo.state_file)
    pattern = re.escape(str(repo.state_file)) + ": " + expected
    for args in (["plan"], ["apply", "--auto-approve"]):
        assert_problems(mc(*args, cwd=repo.root), [pattern])
        assert sha256_of(repo.state_file) == before, args


def test_a_corrupt_state_file(applied_repo: GitRepo) -> None:
    applied_repo.state_file.write_bytes(os.urandom(64 * 1024))
    assert_state_refused(applied_repo, r"not a readable Mission Control state file .*")


def test_a_state_file_from_a_newer_mc(applied_repo: GitRepo) -> None:
    con = duckdb.connect(str(applied_repo.state_file))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    assert_state_refused(
        applied_repo, r"state schema version 999 is newer than this mc understands .*upgrade mc"
    )


def test_a_locked_state_names_the_holder(applied_repo: GitRepo) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
            " print('ok', flush=True); time.sleep(30)",
            str(applied_repo.state_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ok"
        assert_state_refused(applied_repo, rf"state is locked by pid {holder.pid} .*")
    finally:
        holder.kill()
        holder.wait(timeout=10)
