"""Helpers for the specs tests: YAML snippets, and a repo of texts parsed and built like git's.

`doc` (line-exact document text) comes from `helpers.yaml_docs`.
"""

from __future__ import annotations

from collections.abc import Sequence

from helpers.yaml_docs import doc_text

from specs.desired import Desired, build_desired
from specs.errors import SpecError
from specs.loader import ParsedDoc, parse_file
from specs.locate import locate

doc = doc_text  # the tests' name for it


def agent(name: str, *capabilities: str) -> str:
    return doc(
        "Agent", name, f"command: [python, {name}.py]\ncapabilities: [{', '.join(capabilities)}]"
    )


def task(name: str, body: str = "agent: writer") -> str:
    return doc("Task", name, f"title: {name}\n{body}")


MISSION = doc("Mission", "demo", "description: a test mission")
BASE = {
    "mission.yaml": MISSION,
    "agents/writer.yaml": agent("writer", "write"),
    "agents/reviewer.yaml": agent("reviewer", "review", "write"),
}


def parse(path: str, text: str | bytes) -> tuple[list[ParsedDoc], list[str]]:
    """Documents and problems (as the one-line text the CLI prints) of one file.

    Problems come in file order, as SpecError will sort them; parse_file does not promise one.
    """
    data = text.encode() if isinstance(text, str) else text
    docs, problems = parse_file(path, data)
    return docs, [str(p) for p in SpecError(problems).problems]


def parse_ok(path: str, text: str) -> list[ParsedDoc]:
    docs, problems = parse(path, text)
    assert problems == []
    return docs


def build(files: dict[str, str], commit: str = "c0", dirty: Sequence[str] = ()) -> Desired:
    """Parse every file (they must be individually valid) and build the desired state."""
    docs = [d for path, text in sorted(files.items()) for d in parse_ok(path, text)]

    def locator(path: str, index: int, loc: Sequence[str | int]) -> tuple[int, int] | None:
        return locate(files[path], index, loc)

    return build_desired(commit, docs, locator, dirty)


def build_problems(files: dict[str, str]) -> list[str]:
    """The lines of the SpecError that loading `files` raises (fails if it builds).

    As in the git source: problems found parsing single files (a workflow's own structure
    included) are reported before any cross-document check runs.
    """
    parse_problems = [line for path, text in files.items() for line in parse(path, text)[1]]
    if parse_problems:
        return sorted(parse_problems)
    try:
        build(files)
    except SpecError as exc:
        return exc.lines()
    raise AssertionError("expected a SpecError")
