"""Planner agent (feature-dev `plan`): turns the goal into a function to add and its criteria.

Offline and deterministic: it takes the function name from the goal ("Add a word_count
function ..."), looks it up in recipes.py and writes acceptance criteria from the recipe's
examples. The developer implements them and writes them as tests; the verifier runs those.
Outputs `work: feature` so the developer knows what kind of change it is asked for.
"""

import re

import devkit
from recipes import MODULE, RECIPES

FUNCTION = re.compile(r"`?\b([a-z][a-z0-9_]*)`?\s+function\b")


def main():
    task = devkit.load_task()
    goal = devkit.inputs(task)["goal"]
    match = FUNCTION.search(goal)
    if match is None or match.group(1) not in RECIPES:
        known = ", ".join(sorted(RECIPES))
        devkit.finish(
            "failed", error=f"no recipe for the goal {goal!r}; this planner knows {known}"
        )
        return
    name = match.group(1)
    recipe = RECIPES[name]
    criteria = [f"{name}({arg}) == {expected!r}" for arg, expected in recipe.examples]
    plan = [
        f"# Plan: {goal}",
        "",
        f"1. Add `{name}(text)` to `{MODULE}`: {recipe.summary}",
        f"2. Add tests/test_{name}.py with one test per acceptance criterion.",
        "3. Run the whole suite; open a pull request with the diff.",
        "",
        "## Acceptance criteria",
        "",
        *[f"- `{c}`" for c in criteria],
    ]
    devkit.drop("plan.md", "\n".join(plan) + "\n")
    devkit.finish(
        output=f"Plan: add {name} to {MODULE} with {len(criteria)} acceptance criteria.",
        outputs={
            "work": "feature",
            "function": name,
            "module": MODULE,
            "examples": [list(e) for e in recipe.examples],
            "criteria": criteria,
        },
    )


if __name__ == "__main__":
    main()
