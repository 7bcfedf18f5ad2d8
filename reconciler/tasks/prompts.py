"""A workflow step's prompt rendered and its `when` judged at run time (pure); for
engine/workflow_steps.py. Jinja2 loads only when a step is prepared.

Prompts never print `None`: a step that did not finish (skipped by its `when`, or failed
under `on_failure: continue`) is undefined, and reading it fails the step naming it; a
`{{ … }}` whose value is null fails the step naming the variable (README, "Workflows").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specs.templates import CONTEXT_NAMES, NullPrinted, environment, reference_text


class TemplateFailure(Exception):
    """A template could not be rendered with the values known at run time (permanent)."""


class StepOutputs(dict[str, Any]):
    """`steps` in a template: the finished steps' outputs. A step that did not finish is not
    in it (`'b' in steps` is false, `steps.b is defined` too); reading it anyway fails with
    the reason instead of Jinja's "'dict object' has no attribute 'b'"."""

    def __init__(self, finished: Mapping[str, Any], unfinished: Mapping[str, str]) -> None:
        super().__init__(finished)
        self.unfinished = dict(unfinished)

    def __missing__(self, key: str) -> Any:
        why = self.unfinished.get(key)
        if why is None:
            raise KeyError(key)
        from jinja2 import StrictUndefined

        return StrictUndefined(hint=f"steps.{key} is undefined: step {key!r} {why}")


def template_context(
    run: str,
    workflow: str,
    inputs: Mapping[str, Any],
    steps: StepOutputs,
    feedback: str | None,
) -> dict[str, Any]:
    """The names a prompt or `when` may use (specs/templates.py CONTEXT_NAMES)."""
    return {
        "inputs": dict(inputs),
        "steps": steps,
        "run": {"name": run, "workflow": workflow, "inputs": dict(inputs)},
        "feedback": feedback,
    }


def render(text: str, context: Mapping[str, Any]) -> str:
    """The rendered prompt; TemplateFailure names the variable that is undefined or null."""
    from jinja2 import TemplateError, UndefinedError

    try:
        return environment().from_string(text).render(**context)
    except UndefinedError as exc:
        raise TemplateFailure(f"template variable undefined at run time: {exc.message}") from None
    except NullPrinted:
        culprit = _null_culprit(text, context)
        if culprit is None:
            raise TemplateFailure("a `{{ … }}` expression is null at run time") from None
        raise TemplateFailure(
            f"template variable {culprit} is null at run time (prompts never print null;"
            f" write {{{{ {culprit} or '' }}}} where empty text is meant)"
        ) from None
    except TemplateError as exc:
        raise TemplateFailure(f"template failed: {exc}") from None


def when_holds(expression: str, context: Mapping[str, Any]) -> bool:
    """Whether a step's `when` holds; TemplateFailure when it cannot be judged."""
    from jinja2 import TemplateError, UndefinedError

    try:
        # undefined_to_none=False: by default Jinja turns a bare undefined name into None,
        # so a missing output key would silently read as false instead of failing the step
        check = environment().compile_expression(expression, undefined_to_none=False)
        return bool(check(**context))
    except UndefinedError as exc:
        raise TemplateFailure(f"`when` variable undefined at run time: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateFailure(f"`when` failed: {exc}") from None


def _null_culprit(text: str, context: Mapping[str, Any]) -> str | None:
    """The first printed variable (`steps.a.output`) whose value is null, as written in the
    template; None when the null came from something more complex than a variable."""
    from jinja2 import TemplateError, nodes

    for output in environment().parse(text).find_all(nodes.Output):
        for child in output.nodes:
            name = reference_text(child)
            if name is None or name.split(".")[0] not in CONTEXT_NAMES:
                continue
            try:
                value = environment().compile_expression(name, undefined_to_none=False)(**context)
            except TemplateError:
                continue
            if value is None:
                return name
    return None
