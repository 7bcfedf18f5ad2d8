"""Parse one YAML file of the mission repo into validated documents; called by the git source."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError

from specs.errors import SpecProblem
from specs.fields import MAX_DURATION, MAX_SIZE
from specs.locate import SafeLoader, locate, written_scalar
from specs.models import DOC_MODELS, KINDS, Document, Metadata
from specs.workflow_checks import workflow_problems
from specs.yaml12 import core_constructors, core_resolvers, shown

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000
MAX_NESTING = 100


@functools.cache
def _adapter() -> TypeAdapter[Any]:
    """Built on first parse: a warm plan served from the blob cache never needs it."""
    return TypeAdapter(Document)


class _StrictLoader(SafeLoader):
    """The C loader, made strict: a key twice in one mapping is an error; `<<` stays linear;
    plain scalars mean what YAML 1.2's core schema says (specs/yaml12.py), not YAML 1.1.

    PyYAML keeps the last of two equal keys without a word, and copies every merged pair, so
    nested merges grow exponentially.
    """

    yaml_implicit_resolvers = core_resolvers()
    yaml_constructors = core_constructors(SafeLoader.yaml_constructors)

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        keys = [_key_id(k) for k, _ in node.value]
        if len(set(keys)) < len(keys):
            _raise_duplicate_key(node, keys)
        super().flatten_mapping(node)
        if ("tag:yaml.org,2002:merge", "<<") in keys:
            unique = {_key_id(k): (k, v) for k, v in node.value}  # later pairs win, as in a dict
            node.value = list(unique.values())


class _DepthLimit(Composer):
    """PyYAML's Python composer, refusing input nested deeper than MAX_NESTING."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.depth >= MAX_NESTING:
            mark: Any = self.peek_event().start_mark  # type: ignore[attr-defined]
            raise _TooDeep(None, None, f"nested deeper than {MAX_NESTING} levels", mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooDeep(ComposerError):
    """Our nesting limit, told apart from whatever limits the installed parser has."""


class _BoundedLoader(_DepthLimit, _StrictLoader):
    """The strict loader with the depth-limited Python composer.

    libyaml's composer recurses in C and crashes the whole process on deeply nested input.
    """

    def __init__(self, stream: str) -> None:
        _StrictLoader.__init__(self, stream)
        Composer.__init__(self)


class _PythonDepthProbe(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _DepthLimit,
    yaml.resolver.Resolver,
):
    """Pure-Python parsing, used only to find where our nesting limit is crossed.

    libyaml scans ahead before it emits an event and, since PyYAML 6.0.4, stops at its own
    nesting limit (1000) with its own words; the Python scanner has no such limit.
    """

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        Composer.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def _too_deep_before(text: str) -> _TooDeep | None:
    """Our nesting error when `text` (a prefix that the C parser refused) crosses our limit."""
    probe = _PythonDepthProbe(text)
    try:
        while probe.check_node():
            probe.get_node()
    except _TooDeep as exc:
        return exc
    except yaml.YAMLError:
        return None
    return None


def _loader_for(text: str) -> type[_StrictLoader]:
    """The C composer (~30% faster) when `text` provably cannot nest MAX_NESTING deep.

    Every collection on a path owns at least one indicator of its own ('[', '{', '-', '?',
    ':'), so fewer indicators than MAX_NESTING in the whole text bound the depth below it.
    """
    indicators = sum(text.count(c) for c in "[{-?:")
    return _StrictLoader if indicators < MAX_NESTING else _BoundedLoader


def load_value(text: str) -> Any:
    """One YAML value read by the rules of mission files (YAML 1.2 core, strict, bounded);
    for values typed on the command line. Raises yaml.YAMLError."""
    return yaml.load(text, Loader=_loader_for(text))


def _raise_duplicate_key(node: yaml.MappingNode, keys: list[object]) -> None:
    first: dict[object, yaml.Node] = {}
    for (key, _), ident in zip(node.value, keys, strict=True):
        seen = first.setdefault(ident, key)
        if seen is not key:
            problem = f"duplicate key {key.value!r} (first on line {seen.start_mark.line + 1})"
            raise ConstructorError(None, None, problem, key.start_mark)


def _key_id(key: yaml.Node) -> object:
    return (key.tag, key.value) if isinstance(key, yaml.ScalarNode) else id(key)


@dataclass(frozen=True, slots=True)
class ParsedDoc:
    """One validated document, reduced to plain JSON-able data plus where it came from."""

    kind: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    digest: str
    path: str
    index: int

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def digest_of(kind: str, name: str, labels: dict[str, str], spec: dict[str, Any]) -> str:
    """Content digest of a resource; approvals bind to it, so any change voids them."""
    body = {"kind": kind, "name": name, "labels": labels, "spec": spec}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def parse_file(path: str, data: bytes) -> tuple[list[ParsedDoc], list[SpecProblem]]:
    """Every document in `data`, or every problem found in it (never raises for bad input)."""
    if len(data) > MAX_FILE_BYTES:
        mb = len(data) / 1024 / 1024
        return [], [SpecProblem(path, f"file is {mb:.1f} MB; the limit is 10 MB")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [], [SpecProblem(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x})", line)]
    try:
        loaded = list(yaml.load_all(text, Loader=_loader_for(text)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and not isinstance(exc, _TooDeep):
            # the library's own limits must not speak before ours: look at what came first
            exc = _too_deep_before(text[: mark.index + 1]) or exc
            mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc}"
        if mark is None:
            return [], [SpecProblem(path, message)]
        return [], [SpecProblem(path, message, mark.line + 1, mark.column + 1)]
    except yaml.YAMLError as exc:
        return [], [SpecProblem(path, f"invalid YAML: {exc}")]
    # empty documents are skipped but keep their number, so that locate() finds the others
    raw_docs = [(index, raw) for index, raw in enumerate(loaded) if raw is not None]
    if not raw_docs:
        return [], [SpecProblem(path, "file is empty: expected at least one document")]
    if "&" in text and _expanded_size([raw for _, raw in raw_docs]) > MAX_EXPANDED_NODES:
        return [], [SpecProblem(path, "YAML aliases expand to too many nodes (an alias bomb?)")]
    docs: list[ParsedDoc] = []
    problems: list[SpecProblem] = []
    for index, raw in raw_docs:
        doc, found = _validate(path, index, raw, text)
        if doc is not None:
            docs.append(doc)
        problems.extend(_located(text, index, found, path))
    return docs, problems


def _validate(
    path: str, index: int, raw: Any, text: str
) -> tuple[ParsedDoc | None, list[tuple[tuple[str | int, ...], str, str | None]]]:
    if not isinstance(raw, dict):
        return None, [((), f"document {index + 1} is not a mapping (apiVersion/kind/…)", None)]
    try:
        model: Any = _adapter().validate_python(raw)
    except ValidationError as exc:

        def written(loc: tuple[str | int, ...]) -> str | None:
            return written_scalar(text, index, loc)

        return None, [_explain(err, raw, written) for err in exc.errors()]
    spec: BaseModel = model.spec
    meta: Metadata = model.metadata
    dumped = spec.model_dump(mode="json")
    labels = dict(meta.labels)
    if model.kind == "Workflow":
        problems = workflow_problems(dumped)
        if problems:
            return None, problems
    digest = digest_of(model.kind, meta.name, labels, dumped)
    return ParsedDoc(model.kind, meta.name, labels, dumped, digest, path, index), []


def _located(
    text: str, index: int, found: list[tuple[tuple[str | int, ...], str, str | None]], path: str
) -> list[SpecProblem]:
    out = []
    for loc, message, hint in found:
        where = locate(text, index, loc)
        line, col = where if where else (None, None)
        out.append(SpecProblem(path, message, line, col, hint))
    return out


def _explain(
    err: ErrorDetails, raw: dict[str, Any], written: Callable[[tuple[str | int, ...]], str | None]
) -> tuple[tuple[str | int, ...], str, str | None]:
    """Turn a pydantic error into (yaml path, message, hint) that a person can act on;
    `written` gives a scalar as the file spells it, which is how messages quote values."""
    loc = tuple(err["loc"])
    kind = raw.get("kind")
    if loc and loc[0] == kind:
        loc = loc[1:]  # drop the discriminator tag pydantic puts first
    path = _yaml_path(loc, raw)
    is_key = bool(loc) and loc[-1] == "[key]"  # a bad mapping key: name the mapping it is in
    field = ".".join(str(p) for p in (path[:-1] if is_key else path))
    etype = err["type"]
    if etype == "union_tag_invalid":
        return ("kind",), f"unknown kind {kind!r}", f"one of {', '.join(KINDS)}"
    if etype == "union_tag_not_found":
        return (), "missing `kind`", f"one of {', '.join(KINDS)}"
    if etype == "extra_forbidden":
        return path, f"unknown field `{field}`", _suggest(path, kind)
    if etype == "missing":
        return path, f"missing required field `{field}`", None
    message = err["msg"]
    last = str(loc[-1]) if loc else ""
    if etype == "string_pattern_mismatch":
        message = _pattern_message(loc, err["input"])
    elif etype == "string_too_long" and last in _DURATION_FIELDS | _SIZE_FIELDS:
        what, most = ("duration", MAX_DURATION) if last in _DURATION_FIELDS else ("size", MAX_SIZE)
        message = f"{what} {shown(err['input'])} is longer than the maximum {most}"
    elif etype == "string_type" and (as_written := written(path)) is not None:
        message = f"expected text, not {as_written} (a {_yaml_type(err['input'])})"
        return path, f"{field}: {message}", f'quote it to keep it as written: "{as_written}"'
    elif etype == "value_error" and "error" in err.get("ctx", {}):
        message = str(err["ctx"]["error"])  # without pydantic's "Value error, " prefix
    return path, f"{field}: {message}" if field else message, None


def _yaml_path(loc: tuple[str | int, ...], raw: Any) -> tuple[str | int, ...]:
    """The part of a pydantic error location that exists in the YAML document.

    Drops union tags ('secret', 'plain') and '[key]'; keeps a missing field's own name.
    """
    path: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif i < len(loc) - 1 or part == "[key]" or not isinstance(node, dict):
            continue  # a tag, not a place; only a mapping can lack a (last) field
        path.append(part)
    return tuple(path)


def _pattern_message(loc: tuple[str | int, ...], value: Any) -> str:
    last = str(loc[-1]) if loc else ""
    if last == "from_env" or (last == "[key]" and "env" in loc):
        return (
            f"invalid environment variable name {value!r}; "
            "use letters, digits and '_', not starting with a digit"
        )
    if last in _DURATION_FIELDS:
        return f"invalid duration {value!r}; use a number and a unit: 90s, 10m, 2h, 1d"
    if last in _SIZE_FIELDS:
        return f"invalid size {value!r}; use bytes or a binary unit: 512Ki, 25Mi, 2Gi, 1Ti"
    if last == "digest":
        return f"invalid digest {value!r}; expected sha256:<64 hex digits>"
    if last == "target":
        return f"invalid target {value!r}; expected Kind/name, e.g. Task/deploy"
    return f"invalid name {value!r}; use lowercase letters, digits and '-' (at most 63)"


_DURATION_FIELDS = frozenset(
    {"timeout", "heartbeat_timeout", "initial_interval", "max_interval", "approval_ttl", "cpu_time"}
)
_SIZE_FIELDS = frozenset({"memory", "file_size", "max_file", "max_run"})


def _yaml_type(value: Any) -> str:
    """What YAML 1.2 read a scalar as, in the words of the README."""
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number" if isinstance(value, int | float) else "collection"


def _suggest(loc: tuple[str | int, ...], kind: Any) -> str | None:
    model = DOC_MODELS.get(kind) if isinstance(kind, str) else None
    fields = _fields_at(model, loc[:-1]) if loc else []
    if not fields:
        return None
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    return f"did you mean `{close[0]}`?" if close else f"allowed: {', '.join(fields)}"


def _fields_at(annotation: Any, path: tuple[str | int, ...]) -> list[str]:
    """Field names of the model reached by following `path` from `annotation` (else [])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not path:
            return list(annotation.model_fields)
        field = annotation.model_fields.get(str(path[0]))
        return _fields_at(field.annotation, path[1:]) if field else []
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, dict) and path:
        return _fields_at(args[-1], path[1:])  # path[0] is an index or a key
    if origin in (typing.Annotated, typing.Union, types.UnionType):
        return next((found for arg in args if (found := _fields_at(arg, path))), [])
    return []


def _expanded_size(value: Any) -> int:
    """Node count with aliases expanded, computed without expanding them."""
    memo: dict[int, int] = {}

    def size(v: Any) -> int:
        if not isinstance(v, dict | list):
            return 1
        key = id(v)
        if key not in memo:
            memo[key] = 0  # a self-referencing alias counts once instead of recursing forever
            items = list(v.keys()) + list(v.values()) if isinstance(v, dict) else v
            memo[key] = 1 + sum(size(i) for i in items)
        return memo[key]

    return sum(size(d) for d in value)
