"""Redaction at ingestion: the secret values a run was given (its agent's `env` entries taken
`from_env`) are replaced by `[redacted]` in everything the run hands back — output, outputs,
memory updates, the error, drop names and the bytes of its drops, and its logs — before any of
it is stored or handed on to a downstream task. collect.py, leftovers.py, drop_store.py and
logs.py call it.

What it cannot catch: a secret the agent encoded (base64, hex, URL-encoding), split across
values, reversed or otherwise transformed; only the exact bytes of each value are found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .adapters import AgentReport
from .types import Drop

REDACTED = "[redacted]"
_REDACTED_BYTES = REDACTED.encode()


class Redactor:
    """Replaces secret byte strings in a stream fed in pieces. The last len(longest) - 1 bytes
    are held back (unredacted) until more data or `flush` arrives: a match that starts before
    them is complete whatever comes next, so a secret split across two pieces is still caught
    and a shorter secret inside a longer one never cuts the longer one short. With no secrets
    every piece passes straight through."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        found = sorted({s for s in secrets if s}, key=len, reverse=True)
        # Longest first: at one position the alternation takes the longest secret.
        self._pattern = re.compile(b"|".join(re.escape(s) for s in found)) if found else None
        self._hold = max((len(s) for s in found), default=1) - 1
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """The redacted bytes that can be released now."""
        if self._pattern is None:
            return data
        data = self._pending + data
        cut = max(len(data) - self._hold, 0)
        parts: list[bytes] = []
        pos = 0
        for found in self._pattern.finditer(data):
            if found.start() >= cut:
                break
            parts += [data[pos : found.start()], _REDACTED_BYTES]
            pos = found.end()
        keep = max(pos, cut)
        parts.append(data[pos:keep])
        self._pending = data[keep:]
        return b"".join(parts)

    def flush(self) -> bytes:
        """What is still held back (redacted); the stream ends here."""
        rest, self._pending = self._pending, b""
        return rest if self._pattern is None else self._pattern.sub(_REDACTED_BYTES, rest)

    def drop_pending(self) -> None:
        """Forget what is held back (the stream was cut off)."""
        self._pending = b""


def as_text(secrets: Sequence[bytes]) -> list[str]:
    """The secrets as text, longest first (undecodable bytes kept as surrogate escapes: no
    text that crossed the boundary holds those, so they never match)."""
    found = {s.decode("utf-8", "surrogateescape") for s in secrets if s}
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by [redacted] (at one position, the longest)."""
    if not secrets or not any(secret in text for secret in secrets):
        return text
    longest_first = sorted(secrets, key=len, reverse=True)
    return re.sub("|".join(re.escape(s) for s in longest_first), REDACTED, text)


def redact_value(value: Any, secrets: Sequence[str]) -> Any:
    """A JSON value (as parsed at the boundary: at most MAX_DEPTH deep) with every string in
    it, object keys included, redacted; other values are returned as they are."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        return {redact_text(str(k), secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return value


def redact_drops(drops: tuple[Drop, ...], secrets: Sequence[str]) -> tuple[Drop, ...]:
    """Drop records whose path (a name under out/) held a secret, with it redacted (the bytes
    were redacted while they were copied into the store)."""
    if not secrets:
        return drops
    return tuple(replace(d, path=redact_text(d.path, secrets)) for d in drops)


def redacted_report(report: AgentReport, secrets: Sequence[str]) -> AgentReport:
    """The report with output, outputs, memory updates and error redacted."""
    if not secrets:
        return report
    return replace(
        report,
        error=None if report.error is None else redact_text(report.error, secrets),
        output=redact_value(report.output, secrets),
        outputs=redact_value(report.outputs, secrets),
        memory=redact_value(report.memory, secrets),
    )
