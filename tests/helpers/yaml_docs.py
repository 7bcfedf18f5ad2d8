"""Mission documents for tests: `doc()` dumps one as YAML; `doc_text()` writes it line-exact."""

from __future__ import annotations

from typing import Any

import yaml

API_VERSION = "mc/v1"


def doc(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """One document as YAML (key order kept)."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}
    return yaml.safe_dump(body, sort_keys=False)


def doc_text(kind: str, name: str, spec: str = "") -> str:
    """One document; `spec` is the YAML body under `spec:`, indented two spaces per line.

    The header always takes three lines, so `spec:` is line 4 and the spec body starts on line 5
    (tests that check reported line numbers rely on it).
    """
    head = f"apiVersion: {API_VERSION}\nkind: {kind}\nmetadata: {{name: {name}}}\n"
    if not spec:
        return head
    body = "".join(f"  {line}\n" for line in spec.strip("\n").split("\n"))
    return head + "spec:\n" + body
