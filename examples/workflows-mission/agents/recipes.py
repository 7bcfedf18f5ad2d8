"""The functions the offline planner and developer know how to add to textstats/core.py.

A stand-in for a language model: the planner picks a recipe by the function name in the goal
and turns its examples into acceptance criteria; the developer writes the function from it.
Each recipe has a `draft` body, the shortcut a hurried first attempt takes (it passes the happy
path and misses an edge case), and the `body` written once a verifier has sent the draft back.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    summary: str  # the docstring
    draft: str  # first attempt: misses an edge case the examples cover
    body: str  # after rework
    examples: tuple  # (argument as Python source, expected result)


MODULE = "textstats/core.py"  # where new functions go; it defines words() and imports re

RECIPES = {
    "word_count": Recipe(
        summary="The number of words in the text.",
        draft='return len(text.split(" "))',
        body="return len(words(text))",
        examples=(("'one two three'", 3), ("'Hello, world!'", 2), ("''", 0), ("'one  two'", 2)),
    ),
    "unique_word_count": Recipe(
        summary="The number of distinct words, ignoring case.",
        draft="return len(set(text.split()))",
        body="return len(set(words(text)))",
        examples=(("'to be or not to be'", 4), ("''", 0), ("'Be be BE'", 1)),
    ),
    "sentence_count": Recipe(
        summary="The number of sentences, each ending in '.', '!' or '?'.",
        draft='return text.count(".")',
        body='return len(re.findall(r"[.!?]+", text))',
        examples=(("'One. Two.'", 2), ("''", 0), ("'Really?! Yes.'", 2)),
    ),
}
