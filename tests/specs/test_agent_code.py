"""What an agent runs is in its digest: `{repo}/…` paths and `code:` globs resolved against a
tree of blob ids (specs/agent_code.py, build_desired), each problem at its file:line."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from spec_repo import MISSION, doc, parse, parse_ok

from specs.agent_code import matching, references
from specs.desired import Desired, build_desired
from specs.errors import SpecError
from specs.locate import locate

TREE = {
    "agents/collector.py": "a" * 40,
    "agents/lib/util.py": "b" * 40,
    "agents/lib/deep/more.py": "c" * 40,
    "agents-old/collector.py": "d" * 40,
    "agents.txt": "e" * 40,
    "README.md": "f" * 40,
}
PATHS = sorted(TREE)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("agents/collector.py", ["agents/collector.py"]),
        ("agents/lib", ["agents/lib/deep/more.py", "agents/lib/util.py"]),  # a directory
        ("agents/*.py", ["agents/collector.py"]),  # `*` stays in one segment
        (
            "agents/**/*.py",
            ["agents/collector.py", "agents/lib/deep/more.py", "agents/lib/util.py"],
        ),
        ("**/collector.py", ["agents-old/collector.py", "agents/collector.py"]),
        ("agents/l?b/u*", ["agents/lib/util.py"]),
        ("agents", ["agents/collector.py", "agents/lib/deep/more.py", "agents/lib/util.py"]),
        ("agent", []),  # a prefix of a name is not the name
        ("agents/missing.py", []),
        ("*.md", ["README.md"]),
    ],
)
def test_patterns_match_by_path_segment(pattern: str, expected: list[str]) -> None:
    assert matching(pattern, PATHS) == expected


@pytest.mark.parametrize(
    ("command", "found"),
    [
        (["python3", "{repo}/agents/collector.py"], ["agents/collector.py"]),
        (["python3", "run.py", "--script={repo}/agents/x.py"], ["agents/x.py"]),
        (["sh", "-c", "python3 {repo}/a.py && cat {repo}/b/c.sh | x"], ["a.py", "b/c.sh"]),
        (["python3", "{repo}/./agents//w.py"], ["agents/w.py"]),  # normalised
        (["python3", "-m", "x", "{repo}", "{repo}/"], []),  # the whole repo names no file
    ],
)
def test_repo_paths_are_found_inside_any_argument(command: list[str], found: list[str]) -> None:
    assert [r.pattern for r in references({"command": command})] == found


def agent_doc(command: str, extra: str = "") -> str:
    """An Agent 'writer': `command` on line 5, `extra` from line 6."""
    return doc("Agent", "writer", f"command: {command}\n{extra}")


def built(files: dict[str, str], tree: dict[str, str]) -> Desired:
    docs = [d for path, text in sorted(files.items()) for d in parse_ok(path, text)]

    def locator(path: str, index: int, loc: Sequence[str | int]) -> tuple[int, int] | None:
        return locate(files[path], index, loc)

    return build_desired("c0", docs, locator, (), (), tree)


def problems(files: dict[str, str], tree: dict[str, str]) -> list[str]:
    with pytest.raises(SpecError) as err:
        built(files, tree)
    return err.value.lines()


def test_code_blob_ids_are_part_of_the_agent_digest() -> None:
    files = {
        "mission.yaml": MISSION,
        "agents/writer.yaml": agent_doc(
            '[python3, "{repo}/agents/collector.py"]', "code: [agents/lib]"
        ),
    }
    before = built(files, TREE).docs["Agent/writer"]
    assert before.spec["code_blobs"] == {
        "agents/collector.py": "a" * 40,
        "agents/lib/deep/more.py": "c" * 40,
        "agents/lib/util.py": "b" * 40,
    }
    edited = built(files, {**TREE, "agents/lib/util.py": "9" * 40}).docs["Agent/writer"]
    assert edited.digest != before.digest
    unrelated = built(files, {**TREE, "README.md": "0" * 40}).docs["Agent/writer"]
    assert unrelated.digest == before.digest


def test_an_agent_naming_no_code_keeps_its_digest() -> None:
    files = {"mission.yaml": MISSION, "agents/writer.yaml": agent_doc("[python3, w.py]")}
    (parsed,) = parse_ok("agents/writer.yaml", files["agents/writer.yaml"])
    resolved = built(files, TREE).docs["Agent/writer"]
    assert "code" not in resolved.spec and "code_blobs" not in resolved.spec
    assert resolved.digest == parsed.digest


NO_FILE = "names no file in the mission repo"
HINT = "(hint: commit the file, or correct the path: it is relative to the repo root)"


def test_code_that_matches_nothing_is_a_problem_at_its_line() -> None:
    files = {
        "mission.yaml": MISSION,
        "agents/writer.yaml": agent_doc(
            '[python3, "--script={repo}/agents/gone.py"]', 'code: ["agents/*.js"]'
        ),
    }
    assert problems(files, TREE) == [
        f"agents/writer.yaml:5:22: {{repo}}/agents/gone.py {NO_FILE} {HINT}",
        f"agents/writer.yaml:6:10: agents/*.js {NO_FILE} {HINT}",
    ]


def test_code_blobs_written_by_hand_are_refused() -> None:
    files = {
        "mission.yaml": MISSION,
        "agents/writer.yaml": agent_doc("[python3, w.py]", "code_blobs: {w.py: forged}"),
    }
    [line] = problems(files, TREE)
    assert line.startswith("agents/writer.yaml:6:3: code_blobs is set by mc, not by hand")


@pytest.mark.parametrize(
    ("command", "extra", "expected"),
    [
        ('[python3, "{repo}/../etc/x.py"]', "", "command[1]: {repo}/../etc/x.py leaves the repo"),
        ("[x]", "code: [/etc/passwd]", "code[0] '/etc/passwd' is absolute"),
        ("[x]", 'code: ["agents/../../x"]', "leaves the repo ('..')"),
        ("[x]", 'code: ["."]', "names the whole repo"),
    ],
)
def test_code_paths_must_stay_inside_the_repo(command: str, extra: str, expected: str) -> None:
    docs, found = parse("agents/writer.yaml", agent_doc(command, extra))
    assert docs == []
    [line] = found
    assert line.startswith("agents/writer.yaml:5:" if not extra else "agents/writer.yaml:6:")
    assert expected in line
