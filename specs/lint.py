"""Warnings about valid mission files, which `mc validate` prints with file:line; called by
reconciler/commands/lint.py. Nothing here stops a plan.

1. A plain scalar in a free-form value (task and run `inputs`, a workflow input's `default`
   and `enum`) that loses its written form (`1.10` is the number 1.1, `0755` is 755), or that
   a YAML 1.1 reader would take otherwise (`NO`, `on`, `12:30:00`): mc reads YAML 1.2, but
   the person and their other tools may not; quoting makes every reader agree.
2. A step whose prompt or `when` reads a step that may be skipped (it has a `when`) outside
   a guard: at run time that step's output is undefined and the reading step fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml
from pydantic_core import to_jsonable_python

from specs.errors import SpecProblem
from specs.loader import ParsedDoc
from specs.locate import SafeLoader, locate
from specs.yaml12 import core_reading, shown, yaml11_reading

# Where free-form values live, per kind: paths below the document ('*' is any key).
FREE_FORM: dict[str, list[tuple[str, ...]]] = {
    "Task": [("spec", "inputs")],
    "WorkflowRun": [("spec", "inputs")],
    "Workflow": [("spec", "inputs", "*", "default"), ("spec", "inputs", "*", "enum")],
}


def lint(docs: Iterable[ParsedDoc], texts: Mapping[str, str]) -> list[SpecProblem]:
    """Every warning about `docs` (validated documents), located in `texts` ({path: text})."""
    out: list[SpecProblem] = []
    for path, text in sorted(texts.items()):
        out.extend(value_warnings(path, text))
    for doc in docs:
        if doc.kind == "Workflow" and doc.path in texts:
            out.extend(skipped_step_warnings(doc, texts[doc.path]))
    return sorted(out, key=lambda p: (p.path, p.line or 0, p.col or 0, p.message))


# --- 1. values that readers disagree on ---------------------------------------------------


def value_warnings(path: str, text: str) -> list[SpecProblem]:
    """Plain scalars in free-form values whose meaning depends on the reader or whose
    written form is lost."""
    if "inputs" not in text:
        return []  # every free-form value sits under an `inputs:` (a cheap look first)
    try:
        roots = [n for n in yaml.compose_all(text, Loader=SafeLoader) if n is not None]
    except yaml.YAMLError:
        return []  # the loader reports it
    out: list[SpecProblem] = []
    seen: set[int] = set()
    for root in roots:
        for start in _free_form_nodes(root):
            for node in _scalars(start, seen):
                found = _disagreement(node.value)
                if found is not None:
                    message, hint = found
                    mark = node.start_mark
                    out.append(SpecProblem(path, message, mark.line + 1, mark.column + 1, hint))
    return out


def _disagreement(written: str) -> tuple[str, str] | None:
    """(message, hint) when the plain scalar `written` is not what it seems; else None."""
    ok12, v12 = core_reading(written)
    if not ok12:
        return None  # refused by the loader already
    as12, quoted = _json(v12), f'"{shown(written)}"'
    if isinstance(v12, int | float) and not isinstance(v12, bool) and as12 != written:
        message = f"`{shown(written)}` is read as the number {as12}, not as written"
        return message, f"quote it ({quoted}) to keep it as written"
    ok11, v11 = yaml11_reading(written)
    if ok11 and _json(v11) == as12:
        return None
    other = _json(v11) if ok11 else "an error"
    what = "text" if isinstance(v12, str) else as12
    message = f"`{shown(written)}` is {what} here (YAML 1.2), but YAML 1.1 tools read {other}"
    return message, f"quote it ({quoted}) so that every reader agrees"


def _json(value: Any) -> str:
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _free_form_nodes(root: yaml.Node) -> Iterator[yaml.Node]:
    kind = _child(root, "kind")
    if not isinstance(kind, yaml.ScalarNode):
        return
    for pattern in FREE_FORM.get(str(kind.value), []):
        yield from _follow(root, pattern)


def _follow(node: yaml.Node, pattern: tuple[str, ...]) -> Iterator[yaml.Node]:
    if not pattern:
        yield node
        return
    if not isinstance(node, yaml.MappingNode):
        return
    head, rest = pattern[0], pattern[1:]
    for key, value in node.value:
        if head == "*" or (isinstance(key, yaml.ScalarNode) and key.value == head):
            yield from _follow(value, rest)


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    return next(iter(_follow(node, (key,))), None)


def _scalars(node: yaml.Node, seen: set[int]) -> Iterator[yaml.ScalarNode]:
    """Plain scalar values under `node` (keys are names, not values), each node once."""
    if id(node) in seen:
        return  # an alias of a node already looked at
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        if not node.style and node.tag == _implicit_tag(node.value):  # plain, not `!!str NO`
            yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item, seen)
    elif isinstance(node, yaml.MappingNode):
        for _, value in node.value:
            yield from _scalars(value, seen)


def _implicit_tag(value: str) -> str:
    """The tag SafeLoader (which composed the nodes) gives an untagged plain scalar."""
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]


_RESOLVER = SafeLoader("")


# --- 2. reading a step that may be skipped ------------------------------------------------


def skipped_step_warnings(doc: ParsedDoc, text: str) -> list[SpecProblem]:
    """Steps whose prompt or `when` read a step with a `when` outside a guard."""
    from specs.templates import step_guards, unguarded_step_reads  # Jinja2 only when needed

    steps: list[dict[str, Any]] = doc.spec["steps"]
    may_skip = {s["id"] for s in steps if s["when"] is not None}
    out: list[SpecProblem] = []
    for i, step in enumerate(steps):
        others = may_skip - {step["id"]}
        if not others:
            continue
        guarded = step_guards(step["when"])
        reads = {
            "prompt": unguarded_step_reads(step["prompt"], others, guarded),
            "when": unguarded_step_reads(step["when"] or "", others, guarded, expression=True),
        }
        for field, skipped in reads.items():
            for other in skipped:
                where = locate(text, doc.index, ("spec", "steps", i, field))
                line, col = where if where else (None, None)
                message = (
                    f"step {step['id']!r} reads steps.{other}, but step {other!r} may be skipped"
                    " (it has a `when`): its output is then undefined and this step fails"
                )
                hint = f"guard it: {{% if steps.{other} is defined %}}…{{% endif %}}"
                out.append(SpecProblem(doc.path, message, line, col, hint))
    return out
