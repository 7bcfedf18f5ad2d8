"""The error hierarchy every layer raises and the CLI renders as one line per problem."""

from __future__ import annotations

from dataclasses import dataclass


class MCError(Exception):
    """Root of every error meant for a user: printed as-is, exit code 1, no traceback."""

    def lines(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem in one file of the mission repo, pointing at the offending node."""

    path: str
    message: str
    line: int | None = None
    col: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class SpecError(MCError):
    """The desired state is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line or 0, p.col or 0, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]
