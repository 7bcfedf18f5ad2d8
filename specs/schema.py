"""JSON Schema of a mission-repo document, generated from the spec models; `mc schema` prints it."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from specs.models import API_VERSION, KINDS, Document

SCHEMA_ID = "https://mission-control.dev/schema/mc-v1.json"
SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
DESCRIPTION = (
    f"One document of a Mission Control repository (apiVersion {API_VERSION}): "
    f"{', '.join(KINDS)}. A file may hold several documents separated by '---'. "
    "Point your editor at it, e.g. with a first line "
    f"'# yaml-language-server: $schema={SCHEMA_ID}'."
)


def json_schema() -> dict[str, Any]:
    """A draft 2020-12 schema: a oneOf over the document kinds, discriminated by `kind`."""
    body = TypeAdapter(Document).json_schema()
    _close_pattern_maps(body)
    return {
        "$schema": SCHEMA_DRAFT,
        "$id": SCHEMA_ID,
        "title": f"Mission Control document ({API_VERSION})",
        "description": DESCRIPTION,
        **body,
    }


def _close_pattern_maps(node: Any) -> None:
    """Reject keys outside `patternProperties` (env names), as the models do.

    Pydantic writes a constrained dict key as `patternProperties` alone, which lets any other
    key through; the loader would refuse it, so the editor should too.
    """
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)
