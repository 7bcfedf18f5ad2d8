"""Parse one YAML file of the mission repo into validated documents; called by the git source."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from specs.errors import SpecProblem
from specs.locate import SafeLoader, locate
from specs.models import KINDS, SPEC_MODELS, Document, Metadata

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Document)


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
        raw_docs = [d for d in yaml.load_all(text, Loader=SafeLoader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc}"
        if mark is None:
            return [], [SpecProblem(path, message)]
        return [], [SpecProblem(path, message, mark.line + 1, mark.column + 1)]
    except yaml.YAMLError as exc:
        return [], [SpecProblem(path, f"invalid YAML: {exc}")]
    if not raw_docs:
        return [], [SpecProblem(path, "file is empty: expected at least one document")]
    if "&" in text and _expanded_size(raw_docs) > MAX_EXPANDED_NODES:
        return [], [SpecProblem(path, "YAML aliases expand to too many nodes (an alias bomb?)")]
    docs: list[ParsedDoc] = []
    problems: list[SpecProblem] = []
    for index, raw in enumerate(raw_docs):
        doc, found = _validate(path, index, raw)
        if doc is not None:
            docs.append(doc)
        problems.extend(_located(text, index, found, path))
    return docs, problems


def _validate(
    path: str, index: int, raw: Any
) -> tuple[ParsedDoc | None, list[tuple[tuple[str | int, ...], str, str | None]]]:
    if not isinstance(raw, dict):
        return None, [((), f"document {index + 1} is not a mapping (apiVersion/kind/…)", None)]
    try:
        model: Any = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        return None, [_explain(err, raw) for err in exc.errors()]
    spec: BaseModel = model.spec
    meta: Metadata = model.metadata
    dumped = spec.model_dump(mode="json")
    labels = dict(meta.labels)
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
    err: ErrorDetails, raw: dict[str, Any]
) -> tuple[tuple[str | int, ...], str, str | None]:
    """Turn a pydantic error into (yaml path, message, hint) that a person can act on."""
    loc = tuple(err["loc"])
    kind = raw.get("kind")
    if loc and loc[0] == kind:
        loc = loc[1:]  # drop the discriminator tag pydantic puts first
    field = ".".join(str(p) for p in loc)
    etype = err["type"]
    if etype == "union_tag_invalid":
        return ("kind",), f"unknown kind {kind!r}", f"one of {', '.join(KINDS)}"
    if etype == "union_tag_not_found":
        return (), "missing `kind`", f"one of {', '.join(KINDS)}"
    if etype == "extra_forbidden":
        return loc, f"unknown field `{field}`", _suggest(loc, kind)
    if etype == "missing":
        return loc, f"missing required field `{field}`", None
    if etype == "string_pattern_mismatch":
        return loc, f"{field}: {_pattern_message(loc, err['input'])}", None
    return loc, f"{field}: {err['msg']}" if field else err["msg"], None


def _pattern_message(loc: tuple[str | int, ...], value: Any) -> str:
    last = str(loc[-1]) if loc else ""
    if last in ("timeout", "heartbeat_timeout", "initial_interval", "max_interval", "approval_ttl"):
        return f"invalid duration {value!r}; use a number and a unit: 90s, 10m, 2h, 1d"
    if last == "digest":
        return f"invalid digest {value!r}; expected sha256:<64 hex digits>"
    if last == "target":
        return f"invalid target {value!r}; expected Kind/name, e.g. Task/deploy"
    return f"invalid name {value!r}; use lowercase letters, digits and '-' (at most 63)"


def _suggest(loc: tuple[str | int, ...], kind: Any) -> str | None:
    if len(loc) != 2 or loc[0] != "spec" or kind not in SPEC_MODELS:
        return None
    fields = list(SPEC_MODELS[kind].model_fields)
    close = difflib.get_close_matches(str(loc[1]), fields, n=1)
    return f"did you mean `{close[0]}`?" if close else f"allowed: {', '.join(fields)}"


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
