"""Static checks of workflow prompt templates and `when` conditions (sandboxed Jinja2)."""

from __future__ import annotations

import functools
from collections.abc import Set

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

CONTEXT_NAMES = frozenset({"inputs", "steps", "run", "feedback"})


@functools.cache
def environment() -> SandboxedEnvironment:
    """The one template environment: sandboxed, and an undefined name is an error, not ''."""
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


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
