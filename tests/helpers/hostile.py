"""Hypothesis strategies for what a hostile agent returns (issue 14): result.json, cost.json,
stdout, Claude Code and Codex output as bytes, and out/ trees (names, depths, sizes, links,
FIFOs); plus a tally of how many were fed to mc and how many raised past its boundary.

Used by tests/runtime/test_runtime_boundary_properties.py (unit level, many examples) and
tests/sandbox/test_hostile_properties.py (real agents through the real engine, a few)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

# --- text and numbers ---------------------------------------------------------------------------

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
NASTY_TEXT = st.sampled_from(
    [
        "\ud800",
        "a\udfffb",
        "\x00",
        "\x1b[31mred\x1b[0m",
        "\x1b]8;;https://x.example/\x1b\\link",
        "\u202eevil",
        "\r\n\t",
        "x" * 300,
        "\ufeff",
        "[redacted]",
    ]
)
TEXT = st.one_of(
    st.text(max_size=40),
    NASTY_TEXT,
    st.lists(st.one_of(SURROGATES, st.characters()), max_size=6).map("".join),
)
NUMBER = st.one_of(
    st.integers(-5, 5),
    st.integers(),
    st.integers(2**53 - 2, 2**53 + 2),
    st.integers(2**63 - 2, 2**64 + 2),
    st.integers(-(2**130), 2**130),
    st.just(123456789012345678901234567890),
    st.floats(),  # NaN and +-inf included: json.dumps writes them as NaN/Infinity
    st.floats(min_value=999_999, max_value=1_000_001),
    st.decimals(allow_nan=False, places=9, min_value=0, max_value=2).map(float),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
KEY = TEXT
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEY, inner, max_size=4)),
    max_leaves=16,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    """A list `depth` levels deep (built without recursion)."""
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    return value


DEEP_VALUE = st.integers(60, 70).map(nested)  # around the boundary's 64
MANY_KEYS = st.integers(990, 1010).map(lambda n: {f"k{i}": i for i in range(n)})
LONG_KEY = st.integers(250, 260).map(lambda n: {"k" * n: 1})
VALUE = st.one_of(JSON_VALUE, DEEP_VALUE, MANY_KEYS, LONG_KEY)

# --- documents and their bytes ------------------------------------------------------------------

STATUS = st.one_of(st.sampled_from(["done", "retry", "failed", "blocked"]), TEXT, NUMBER)
RESULT_DOC = st.fixed_dictionaries(
    {"status": STATUS},
    optional={
        "output": VALUE,
        "outputs": st.one_of(st.dictionaries(KEY, VALUE, max_size=3), VALUE),
        "cost_usd": st.one_of(NUMBER, TEXT),
        "tokens": st.one_of(NUMBER, TEXT),
        "memory": st.one_of(
            st.dictionaries(st.sampled_from(["agent", "task", "x"]), VALUE, max_size=3), VALUE
        ),
        "error": st.one_of(TEXT, VALUE),
        "extra": VALUE,
    },
)


def encodings(doc: Any) -> st.SearchStrategy[bytes]:
    """Ways an agent writes a document: Python's json.dump (surrogates escaped, NaN allowed),
    raw UTF-8 with surrogates passed through, UTF-16, cut short, with a key twice."""
    text = json.dumps(doc)
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    forms = [
        st.just(text.encode()),
        st.just(raw),
        st.just(json.dumps(doc, ensure_ascii=False).encode("utf-16", "surrogatepass")),
        st.integers(0, max(len(raw) - 1, 0)).map(lambda cut: raw[:cut]),
    ]
    if isinstance(doc, dict) and doc:
        forms.append(st.just(("{" + text[1:-1] + ", " + text[1:-1] + "}").encode()))
    return st.one_of(forms)


RAW_BYTES = st.one_of(
    st.binary(max_size=64),
    st.integers(1_000, 300_000).map(lambda n: b"[" * n),
    st.integers(1_000, 300_000).map(lambda n: b'{"a":' * n),
    st.just(b'{"status": "done", "tokens": ' + b"9" * 5000 + b"}"),
    st.just(b'{"status": "done", "output": "\\ud800"}'),
)
RESULT_BYTES = st.one_of(RESULT_DOC.flatmap(encodings), RAW_BYTES)
COST_BYTES = st.one_of(
    st.fixed_dictionaries({"cost_usd": st.one_of(NUMBER, TEXT, VALUE)}).flatmap(encodings),
    VALUE.flatmap(encodings),
    RAW_BYTES,
)
CLAUDE_DOC = st.fixed_dictionaries(
    {"type": st.one_of(st.just("result"), TEXT)},
    optional={
        "subtype": st.one_of(
            st.sampled_from(
                ["success", "error_max_turns", "error_max_budget_usd", "error_during_execution"]
            ),
            TEXT,
            NUMBER,
        ),
        "is_error": st.one_of(st.booleans(), TEXT, NUMBER),
        "result": VALUE,
        "total_cost_usd": st.one_of(NUMBER, TEXT),
        "usage": st.one_of(
            st.fixed_dictionaries({}, optional={"input_tokens": NUMBER, "output_tokens": NUMBER}),
            VALUE,
        ),
    },
)
CLAUDE_BYTES = st.one_of(
    CLAUDE_DOC.flatmap(encodings),
    st.lists(st.one_of(CLAUDE_DOC, VALUE), max_size=4).flatmap(encodings),  # --verbose array
    st.lists(CLAUDE_DOC, min_size=1, max_size=3).map(  # stream-json lines
        lambda docs: "\n".join(json.dumps(d) for d in docs).encode()
    ),
    RAW_BYTES,
)
CODEX_EVENT = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "thread.started",
                    "turn.started",
                    "item.completed",
                    "turn.completed",
                    "turn.failed",
                    "error",
                ]
            )
        },
        optional={
            "item": st.one_of(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["agent_message", "reasoning"])},
                    optional={"text": VALUE},
                ),
                VALUE,
            ),
            "usage": st.one_of(
                st.fixed_dictionaries(
                    {}, optional={"input_tokens": NUMBER, "output_tokens": NUMBER}
                ),
                VALUE,
            ),
            "error": VALUE,
            "message": VALUE,
            "thread_id": VALUE,
        },
    ),
    VALUE,
)
CODEX_LINES = st.lists(
    st.one_of(
        CODEX_EVENT.map(json.dumps),
        RAW_BYTES.map(lambda b: b.decode("utf-8", "replace")),
    ),
    max_size=8,
)
STDOUT_BYTES = st.one_of(
    st.binary(max_size=200),
    TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    CLAUDE_BYTES,
)

# --- out/ trees ---------------------------------------------------------------------------------

NAME = st.one_of(
    st.binary(min_size=1, max_size=12).filter(
        lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
    ),
    st.sampled_from(
        [b"\xff\xfe.txt", b"a\nb", b"\x1b[31m.md", b"x" * 255, "caf\u00e9.md".encode(), b"-rf"]
    ),
    st.text(
        alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
        min_size=1,
        max_size=12,
    )
    .filter(lambda t: t not in (".", ".."))
    .map(lambda t: t.encode()),
)


@dataclass(frozen=True)
class Entry:
    """One thing an agent leaves under out/: a path of raw name bytes and what it is."""

    path: tuple[bytes, ...]
    kind: str  # file | dir | symlink | fifo | sparse
    size: int = 0
    target: bytes = b""


ENTRY = st.builds(
    Entry,
    path=st.lists(NAME, min_size=1, max_size=4).map(tuple),
    kind=st.sampled_from(["file", "file", "dir", "symlink", "fifo", "sparse"]),
    size=st.integers(0, 3000),
    target=st.sampled_from([b"/etc/passwd", b"..", b"../../../state.duckdb", b"missing", b"."]),
)
DEEP_DIRS = st.integers(20, 120).map(lambda n: Entry((b"d",) * n + (b"f.txt",), "file", 3))
OUT_TREE = st.lists(st.one_of(ENTRY, DEEP_DIRS), max_size=8)


def build_tree(out: Path, entries: list[Entry]) -> None:
    """Make the entries under `out` (best effort: a clash, say a file where a directory is
    wanted, or a name too long for the path, just leaves that entry out)."""
    base = os.fsencode(out)
    for entry in entries:
        path = os.path.join(base, *entry.path)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            match entry.kind:
                case "dir":
                    os.makedirs(path, exist_ok=True)
                case "symlink":
                    os.symlink(entry.target, path)
                case "fifo":
                    os.mkfifo(path)
                case "sparse":
                    _new_file(path, 0, 64 * 1024 * 1024 + entry.size)
                case _:
                    _new_file(path, entry.size, entry.size)
        except OSError:
            continue


def _new_file(path: bytes, written: int, size: int) -> None:
    """A new regular file (never opening what is there: a FIFO would block, a link lead out)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, b"x" * written)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


# --- the tally ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """How many hostile inputs of each kind were fed to mc, and how many raised past it."""

    fed: Counter[str] = field(default_factory=Counter)
    escaped: Counter[str] = field(default_factory=Counter)

    def table(self) -> str:
        rows = [f"{'input':<28} {'generated':>9} {'escaped':>7}"]
        for kind in sorted(self.fed):
            rows.append(f"{kind:<28} {self.fed[kind]:>9} {self.escaped[kind]:>7}")
        rows.append(f"{'total':<28} {sum(self.fed.values()):>9} {sum(self.escaped.values()):>7}")
        return "\n".join(rows)
