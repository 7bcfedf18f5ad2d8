"""Static checks of workflow prompt templates and `when` conditions (sandboxed Jinja2)."""

from __future__ import annotations

import functools
import json
from collections.abc import Set
from typing import Any

from jinja2 import StrictUndefined, TemplateRuntimeError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

CONTEXT_NAMES = frozenset({"inputs", "steps", "run", "feedback"})


class NullPrinted(TemplateRuntimeError):
    """A `{{ … }}` evaluated to null: prompts never say `None` (reconciler/tasks/prompts.py
    names the variable)."""


def _printable(value: Any) -> Any:
    """What `{{ value }}` prints: values as JSON writes them (true, [1, "a"]), never Python's
    reprs (True, None, ['a']); null is an error."""
    if value is None:
        raise NullPrinted("a template printed null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


@functools.cache
def environment() -> SandboxedEnvironment:
    """The one template environment: sandboxed, and an undefined name is an error, not '';
    so is printing null (see _printable)."""
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_printable,
    )


def reference_text(node: nodes.Node) -> str | None:
    """`steps.plan.output` for a chain of names, attributes and constant keys; else None."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = reference_text(node.node)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = reference_text(node.node)
        key = node.arg.value
        if base is None or not isinstance(key, str | int):
            return None
        return (
            f"{base}.{key}" if isinstance(key, str) and key.isidentifier() else f"{base}[{key!r}]"
        )
    return None


def check_template(
    text: str, inputs: Set[str], before: Set[str], steps: Set[str], *, expression: bool = False
) -> list[str]:
    """Problems knowable before running: syntax, unknown names, inputs not declared, and
    references to steps that are not guaranteed to have run first (`before`)."""
    source = "{{ (" + text + ") }}" if expression else text
    try:
        tree = environment().parse(source)
    except TemplateSyntaxError as exc:
        where = "" if expression else f" (template line {exc.lineno})"
        return [f"template syntax error: {exc.message}{where}"]
    problems = [
        f"undefined template variable {name!r} (available: inputs, steps, run, feedback)"
        for name in sorted(meta.find_undeclared_variables(tree) - CONTEXT_NAMES)
    ]
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        root, key = _root_and_key(node)
        if root == "inputs" and key is not None and key not in inputs:
            problems.append(f"undefined input {key!r} in template (declare it under spec.inputs)")
        elif root == "steps" and key is not None:
            if key not in steps:
                problems.append(f"template refers to unknown step {key!r}")
            elif key not in before:
                problems.append(
                    f"template refers to step {key!r}, which does not run before this one"
                    " (add it to depends_on)"
                )
    return sorted(set(problems))


def _root_and_key(node: nodes.Node) -> tuple[str | None, str | None]:
    """For `inputs.goal` / `steps['plan']`: ('inputs', 'goal'); otherwise (None, None)."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.node.name, node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.node.name, node.arg.value
    return None, None


def unguarded_step_reads(
    text: str, candidates: Set[str], guarded: Set[str] = frozenset(), *, expression: bool = False
) -> list[str]:
    """Steps among `candidates` (those that may be skipped) that `text` reads outside a
    guard: an `{% if %}` or `… if … else …` whose test says `steps.X is defined` (or
    `'X' in steps`). `guarded` are guarded already (by the reading step's `when`). A template
    that does not parse reads nothing (check_template reports it)."""
    source = "{{ (" + text + ") }}" if expression else text
    try:
        tree = environment().parse(source)
    except TemplateSyntaxError:
        return []
    found: set[str] = set()
    _walk_reads(tree, set(candidates), frozenset(guarded), found)
    return sorted(found)


def step_guards(text: str | None) -> frozenset[str]:
    """Steps an expression (a `when`) tests for being defined."""
    if text is None:
        return frozenset()
    try:
        return _guards_in(environment().parse("{{ (" + text + ") }}"))
    except TemplateSyntaxError:
        return frozenset()


def _walk_reads(
    node: nodes.Node, candidates: set[str], guarded: frozenset[str], found: set[str]
) -> None:
    if isinstance(node, nodes.If | nodes.CondExpr):
        guarded = guarded | _guards_in(node.test)
    if _guard_of(node) is not None:
        return  # `steps.X is defined` reads nothing
    root, key = _root_and_key(node)
    if root == "steps" and key in candidates and key not in guarded:
        found.add(key)
    for child in node.iter_child_nodes():
        _walk_reads(child, candidates, guarded, found)


def _guards_in(test: nodes.Node) -> frozenset[str]:
    guards = {_guard_of(n) for n in [test, *test.find_all((nodes.Test, nodes.Compare))]}
    return frozenset(g for g in guards if g is not None)


def _guard_of(node: nodes.Node) -> str | None:
    """X for `steps.X is defined` / `is undefined` / `'X' in steps`; else None."""
    if isinstance(node, nodes.Test) and node.name in ("defined", "undefined"):
        root, key = _root_and_key(node.node)
        return key if root == "steps" else None
    if (
        isinstance(node, nodes.Compare)
        and isinstance(node.expr, nodes.Const)
        and isinstance(node.expr.value, str)
        and len(node.ops) == 1
        and node.ops[0].op in ("in", "notin")
        and isinstance(node.ops[0].expr, nodes.Name)
        and node.ops[0].expr.name == "steps"
    ):
        return node.expr.value
    return None
