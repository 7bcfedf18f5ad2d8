"""Find the line and column of a node in a YAML file, given its path to report problems."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

try:  # the C parser is ~10x faster; fall back for interpreters built without libyaml
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

__all__ = ["SafeLoader", "document_lines", "locate", "written_scalar"]

PathPart = str | int


def locate(text: str, doc_index: int, path: Sequence[PathPart]) -> tuple[int, int] | None:
    """1-based (line, column) of the deepest node along `path` in document `doc_index`.

    Missing keys stop the walk at the parent, so 'missing field' points at the mapping that
    lacks it. Mapping entries point at their key, which is where a reader looks.
    """
    found = _walk(text, doc_index, path)
    if found is None:
        return None
    mark = found[1]
    return mark.line + 1, mark.column + 1


def written_scalar(text: str, doc_index: int, path: Sequence[PathPart]) -> str | None:
    """The scalar at `path` exactly as written (without quotes), or None when the path does
    not end at a scalar; error messages quote values this way, not as YAML read them."""
    found = _walk(text, doc_index, path)
    if found is None or found[2] != len(path) or not isinstance(found[0], yaml.ScalarNode):
        return None
    return str(found[0].value)


def _walk(
    text: str, doc_index: int, path: Sequence[PathPart]
) -> tuple[yaml.Node, yaml.Mark, int] | None:
    """(deepest node along `path`, where a reader looks for it, how many parts were found)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=SafeLoader))
    except yaml.YAMLError:
        return None
    docs = [n for n in nodes if n is not None]
    if doc_index >= len(docs):
        return None
    node: yaml.Node = docs[doc_index]
    mark = node.start_mark
    depth = 0
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == part), None)
            if found is None:
                break
            mark, node = found[0].start_mark, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            mark = node.start_mark
        else:
            break
        depth += 1
    return node, mark, depth


def document_lines(text: str) -> list[int]:
    """1-based first line of each non-empty document, in order."""
    try:
        return [n.start_mark.line + 1 for n in yaml.compose_all(text, Loader=SafeLoader) if n]
    except yaml.YAMLError:
        return []
