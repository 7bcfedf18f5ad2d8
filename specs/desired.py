"""The desired state: every validated document of one commit, checked across documents."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from specs.agent_code import SYNTHETIC, references, resolve
from specs.errors import SpecError, SpecProblem
from specs.graph import find_cycle
from specs.loader import ParsedDoc, digest_of

Locator = Callable[[str, int, Sequence[str | int]], tuple[int, int] | None]
MISSION_FILE = "mission.yaml"


@dataclass(frozen=True)
class Desired:
    """What the repo at `commit` asks for, keyed by 'Kind/name'."""

    commit: str | None
    docs: dict[str, ParsedDoc]
    dirty_paths: tuple[str, ...] = field(default=())
    malformed_approvals: tuple[SpecProblem, ...] = field(default=())

    @property
    def mission(self) -> ParsedDoc:
        return self.docs["Mission/" + self.mission_name]

    @property
    def mission_name(self) -> str:
        return next(d.name for d in self.docs.values() if d.kind == "Mission")

    def of_kind(self, kind: str) -> list[ParsedDoc]:
        return sorted((d for d in self.docs.values() if d.kind == kind), key=lambda d: d.name)

    def get(self, kind: str, name: str) -> ParsedDoc | None:
        return self.docs.get(f"{kind}/{name}")


def build_desired(
    commit: str | None,
    docs: Iterable[ParsedDoc],
    locator: Locator,
    dirty: Sequence[str] = (),
    malformed_approvals: tuple[SpecProblem, ...] = (),
    tree: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> Desired:
    """Index the documents and run every cross-document check; raise SpecError listing all.

    `tree` ({path: git blob id} of every file of the commit or work tree read) gives each
    Agent the blob ids of the files it runs (specs/agent_code.py) as `spec.code_blobs`, in
    its digest; None (no repo at hand, as in pure tests) leaves agents' code unresolved.
    `links`: the tree's symbolic links that point inside the repo, to what they point to.
    """
    found: list[tuple[ParsedDoc | None, tuple[str | int, ...], str, str | None]] = []
    index: dict[str, ParsedDoc] = {}
    for doc in docs:
        first = index.get(doc.key)
        if first is not None:
            where = f"{first.path}" + (f" document {first.index + 1}" if first.index else "")
            found.append(
                (doc, ("metadata", "name"), f"duplicate {doc.key} (first in {where})", None)
            )
            continue
        index[doc.key] = doc
    if tree is not None:
        found.extend(_with_code(index, tree, links or {}))
    found.extend(_check_placement(index))
    found.extend(_check_tasks(index))
    found.extend(_check_workflows(index))
    found.extend(_check_runs(index))
    if found:
        raise SpecError([_problem(d, loc, msg, hint, locator) for d, loc, msg, hint in found])
    return Desired(commit, index, tuple(dirty), malformed_approvals)


def _problem(
    doc: ParsedDoc | None, loc: tuple[str | int, ...], msg: str, hint: str | None, locator: Locator
) -> SpecProblem:
    if doc is None:
        return SpecProblem(MISSION_FILE, msg, None, None, hint)
    where = locator(doc.path, doc.index, loc)
    line, col = where if where else (None, None)
    return SpecProblem(doc.path, msg, line, col, hint)


Found = list[tuple[ParsedDoc | None, tuple[str | int, ...], str, str | None]]


def _check_placement(index: dict[str, ParsedDoc]) -> Found:
    out: Found = []
    # the one in mission.yaml (if any) is the Mission; the others are the extra ones
    missions = [d for d in index.values() if d.kind == "Mission"]
    missions.sort(key=lambda d: d.path != MISSION_FILE)
    if not missions:
        out.append((None, (), "missing the Mission document", "create mission.yaml (`mc init`)"))
    for doc in missions:
        if doc.path != MISSION_FILE:
            out.append((doc, ("kind",), "the Mission belongs in mission.yaml", None))
    if len(missions) > 1:
        for doc in missions[1:]:
            out.append((doc, ("kind",), "a repo declares exactly one Mission", None))
    for doc in index.values():
        if doc.kind == "Approval" and not doc.path.startswith("approvals/"):
            out.append((doc, ("kind",), "approvals must live under approvals/", None))
    return out


def _with_code(
    index: dict[str, ParsedDoc], tree: Mapping[str, str], links: Mapping[str, str]
) -> Found:
    """Replace each Agent naming code by one whose spec (and digest) holds the code's blob ids;
    a pattern matching no file, or a hand-written `code_blobs`, is a problem at its line."""
    out: Found = []
    paths: list[str] | None = None  # sorted once, for every agent
    for key, doc in list(index.items()):
        if doc.kind != "Agent":
            continue
        if SYNTHETIC in doc.spec:
            hint = "name files with `code:` or as {repo}/… in `command`"
            out.append((doc, ("spec", SYNTHETIC), f"{SYNTHETIC} is set by mc, not by hand", hint))
            continue
        refs = references(doc.spec)
        if not refs:
            continue
        paths = sorted(tree) if paths is None else paths
        blobs, problems = resolve(refs, tree, paths, links)
        out.extend((doc, loc, msg, hint) for loc, msg, hint in problems)
        if not problems:
            spec = {**doc.spec, SYNTHETIC: blobs}
            digest = digest_of(doc.kind, doc.name, doc.labels, spec)
            index[key] = dataclasses.replace(doc, spec=spec, digest=digest)
    return out


def _names(index: dict[str, ParsedDoc], kind: str) -> list[str]:
    return [d.name for d in index.values() if d.kind == kind]


def _unknown(kind: str, name: str, known: list[str]) -> tuple[str, str | None]:
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown {kind} {name!r}", (f"did you mean {close[0]!r}?" if close else None)


def _capabilities(index: dict[str, ParsedDoc]) -> dict[str, set[str]]:
    return {d.name: set(d.spec["capabilities"]) for d in index.values() if d.kind == "Agent"}


def _check_runner(
    doc: ParsedDoc, base: tuple[str | int, ...], body: dict[str, Any], caps: dict[str, set[str]]
) -> Found:
    """An `agent:` must exist and `requires:` must be met by some agent (the named one if any)."""
    out: Found = []
    agent, requires = body.get("agent"), set(body.get("requires") or [])
    if agent is not None and agent not in caps:
        msg, hint = _unknown("agent", agent, list(caps))
        out.append((doc, (*base, "agent"), msg, hint))
    elif agent is not None and not requires <= caps[agent]:
        missing = ", ".join(sorted(requires - caps[agent]))
        out.append((doc, (*base, "requires"), f"agent {agent!r} lacks capability {missing}", None))
    elif agent is None and requires and not any(requires <= c for c in caps.values()):
        wanted = ", ".join(sorted(requires))
        out.append((doc, (*base, "requires"), f"no agent has the capabilities: {wanted}", None))
    return out


def _check_tasks(index: dict[str, ParsedDoc]) -> Found:
    out: Found = []
    caps = _capabilities(index)
    tasks = {d.name: d for d in index.values() if d.kind == "Task"}
    for doc in tasks.values():
        out.extend(_check_runner(doc, ("spec",), doc.spec, caps))
        for i, dep in enumerate(doc.spec["depends_on"]):
            if dep not in tasks:
                msg, hint = _unknown("task", dep, list(tasks))
                out.append((doc, ("spec", "depends_on", i), f"depends on {msg}", hint))
    graph = {name: [d for d in t.spec["depends_on"] if d in tasks] for name, t in tasks.items()}
    for cycle in _cycles(graph):
        doc = tasks[cycle[0]]
        out.append((doc, ("spec", "depends_on"), "dependency cycle: " + " → ".join(cycle), None))
    return out


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    seen: set[str] = set()
    while True:
        cycle = find_cycle({k: v for k, v in graph.items() if k not in seen})
        if cycle is None:
            return cycles
        cycles.append(cycle)
        seen.update(cycle)


def _check_workflows(index: dict[str, ParsedDoc]) -> Found:
    """Steps' agents and capabilities; a workflow's own structure is checked when parsed."""
    out: Found = []
    caps = _capabilities(index)
    for doc in (d for d in index.values() if d.kind == "Workflow"):
        for i, step in enumerate(doc.spec["steps"]):
            out.extend(_check_runner(doc, ("spec", "steps", i), step, caps))
    return out


def _check_runs(index: dict[str, ParsedDoc]) -> Found:
    out: Found = []
    workflows = {d.name: d for d in index.values() if d.kind == "Workflow"}
    for doc in (d for d in index.values() if d.kind == "WorkflowRun"):
        wf = workflows.get(doc.spec["workflow"])
        if wf is None:
            msg, hint = _unknown("workflow", doc.spec["workflow"], list(workflows))
            out.append((doc, ("spec", "workflow"), msg, hint))
            continue
        out.extend(_check_inputs(doc, wf))
    return out


def _check_inputs(run: ParsedDoc, wf: ParsedDoc) -> Found:
    out: Found = []
    declared: dict[str, dict[str, Any]] = wf.spec["inputs"]
    given: dict[str, Any] = run.spec["inputs"]
    for key in given:
        if key not in declared:
            msg, hint = _unknown(f"input of workflow {wf.name!r}:", key, list(declared))
            out.append((run, ("spec", "inputs", key), msg, hint))
    for key, decl in declared.items():
        if decl["required"] and key not in given and decl["default"] is None:
            out.append((run, ("spec", "inputs"), f"missing required input {key!r}", None))
        elif key in given and decl["enum"] is not None and given[key] not in decl["enum"]:
            allowed = ", ".join(map(str, decl["enum"]))
            msg = f"input {key!r} is {given[key]!r}; expected one of {allowed}"
            out.append((run, ("spec", "inputs", key), msg, None))
    return out


def raise_if(problems: list[SpecProblem]) -> None:
    if problems:
        raise SpecError(problems)
