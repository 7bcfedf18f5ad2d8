"""Checks of one Workflow document on its own: step ids, the DAG, templates (run at parse time,
so their result is cached with the blob and a warm plan never loads Jinja2)."""

from __future__ import annotations

import difflib
from typing import Any

from specs.graph import find_cycle

Problem = tuple[tuple[str | int, ...], str, str | None]


def workflow_problems(spec: dict[str, Any]) -> list[Problem]:
    steps: list[dict[str, Any]] = spec["steps"]
    ids = [s["id"] for s in steps]
    out: list[Problem] = []
    for i, step in enumerate(steps):
        base = ("spec", "steps", i)
        if ids.index(step["id"]) != i:
            out.append(((*base, "id"), f"duplicate step id {step['id']!r}", None))
        for j, dep in enumerate(step["depends_on"]):
            if dep not in ids:
                out.append(
                    ((*base, "depends_on", j), f"depends on unknown step {dep!r}", _hint(dep, ids))
                )
        if step["verifies"] is not None and step["verifies"] not in ids:
            out.append(
                (
                    (*base, "verifies"),
                    f"verifies unknown step {step['verifies']!r}",
                    _hint(step["verifies"], ids),
                )
            )
    graph = {s["id"]: [d for d in s["depends_on"] if d in ids] for s in steps}
    cycle = find_cycle(graph)
    if cycle is not None:
        where = ("spec", "steps", ids.index(cycle[0]), "depends_on")
        out.append((where, "step cycle: " + " → ".join(cycle), None))
    elif not out:
        out.extend(_template_problems(spec, steps, graph))
    return out


def _hint(name: str, known: list[str]) -> str | None:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _ancestors(graph: dict[str, list[str]], node: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph.get(node, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, []))
    return seen


def _template_problems(
    spec: dict[str, Any], steps: list[dict[str, Any]], graph: dict[str, list[str]]
) -> list[Problem]:
    """Templates checked statically: syntax, names, inputs, and upstream-only steps."""
    from specs.templates import check_template  # Jinja2 only when a workflow is parsed

    out: list[Problem] = []
    inputs, ids = set(spec["inputs"]), set(graph)
    for i, step in enumerate(steps):
        before = _ancestors(graph, step["id"])
        base = ("spec", "steps", i)
        verifies = step["verifies"]
        if verifies is not None and verifies not in before:
            msg = f"step {step['id']!r} verifies {verifies!r} but does not depend on it"
            out.append(((*base, "verifies"), msg, "add it to depends_on"))
        for problem in check_template(step["prompt"], inputs, before, ids):
            out.append(((*base, "prompt"), problem, None))
        if step["when"] is not None:
            for problem in check_template(step["when"], inputs, before, ids, expression=True):
                out.append(((*base, "when"), problem, None))
    return out
