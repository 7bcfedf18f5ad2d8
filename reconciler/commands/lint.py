"""The warnings of `mc validate` (specs/lint.py) for a commit or the work tree; called by
cli/main.py after the mission validated."""

from __future__ import annotations

from reconciler.commands.context import MissionContext
from specs.desired import Desired
from specs.errors import SpecProblem
from specs.lint import lint


def validation_warnings(ctx: MissionContext, desired: Desired) -> list[SpecProblem]:
    """Warnings about the files `desired` was read from (its commit, or the work tree when it
    has none), one per place, in file order."""
    repo = ctx.repo
    if desired.commit is None:
        files = repo.worktree_files()
    else:
        blobs = repo.tree_blobs(desired.commit)
        contents = repo.read_blobs(sorted({b.sha for b in blobs}))
        files = {b.path: contents[b.sha] for b in blobs}
    texts = {path: data.decode("utf-8", "replace") for path, data in files.items()}
    return lint(desired.docs.values(), texts)
