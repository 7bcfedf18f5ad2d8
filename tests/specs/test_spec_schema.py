"""The JSON Schema `mc schema` prints, for editors (yaml-language-server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from spec_repo import agent, doc, task

from specs.agent_code import SYNTHETIC
from specs.models import KINDS, SPEC_MODELS
from specs.schema import SCHEMA_ID, json_schema


def _resolve(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/$defs/")
    found: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return found


def test_schema_is_json_with_its_identity() -> None:
    schema = json.loads(json.dumps(json_schema(), indent=2))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID == "https://mission-control.dev/schema/mc-v1.json"
    assert schema["title"] == "Mission Control document (mc/v1)"
    assert "Mission, Agent, Task, Workflow, WorkflowRun, Approval" in schema["description"]


def test_schema_is_a_oneof_over_every_kind() -> None:
    schema = json_schema()
    branches = [_resolve(schema, b["$ref"]) for b in schema["oneOf"]]
    assert [b["properties"]["kind"]["const"] for b in branches] == list(KINDS)
    assert schema["discriminator"]["propertyName"] == "kind"
    for branch in branches:
        assert branch["additionalProperties"] is False
        assert branch["properties"]["apiVersion"]["const"] == "mc/v1"
        assert {"apiVersion", "kind", "metadata"} <= set(branch["required"])


def test_schema_spec_properties_match_the_models() -> None:
    schema = json_schema()
    for kind, model in SPEC_MODELS.items():
        spec = schema["$defs"][model.__name__]
        assert spec["additionalProperties"] is False, kind
        written = [f for f in model.model_fields if f != SYNTHETIC]  # code_blobs: mc sets it
        assert list(spec["properties"]) == written, kind


def test_schema_carries_the_field_rules() -> None:
    defs = json_schema()["$defs"]
    name = defs["Metadata"]["properties"]["name"]
    assert name["pattern"] == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" and name["maxLength"] == 63
    assert defs["AgentSpec"]["required"] == ["command"]
    env = defs["AgentSpec"]["properties"]["env"]
    assert env["additionalProperties"] is False  # keys outside the pattern are refused
    assert list(env["patternProperties"]) == ["^[A-Za-z_][A-Za-z0-9_]*$"]
    assert defs["SecretRef"]["required"] == ["from_env"]
    timeout = defs["AgentSpec"]["properties"]["timeout"]
    assert timeout["pattern"] == "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$"


def test_every_kind_documents_its_purpose_or_fields() -> None:
    defs = json_schema()["$defs"]
    assert defs["Approver"]["description"].startswith("A person whose signed commits")
    assert defs["AgentSpec"]["properties"]["command"]["description"] == (
        "argv run once per task attempt"
    )


SAMPLES = [
    doc("Mission", "demo", "approvers: [{name: alice, telegram_ids: [1]}]"),
    agent("writer", "write"),
    doc(
        "Agent", "w", "command: [x]\nenv: {KEY: {from_env: KEY}, PLAIN: v}\nbudget: {daily_usd: 5}"
    ),
    task("draft", "agent: writer\nretry: {max_attempts: 2}"),
    doc("Workflow", "flow", "inputs: {goal: {required: true}}\nsteps:\n  - {id: a, agent: w}"),
    doc("WorkflowRun", "run", "workflow: flow\ninputs: {goal: x}"),
    doc("Approval", "ok", "target: Task/draft\ndigest: sha256:" + "a" * 64),
]
BAD_SAMPLES = [
    doc("Agnet", "a", "command: [x]"),
    doc("Agent", "Bad", "command: [x]"),
    doc("Agent", "a", "command: [x]\ncapabilites: [x]"),
    doc("Agent", "a", "command: [x]\ntimeout: soon"),
    doc("Agent", "a", "command: [x]\nenv: {bad key: v}"),
    doc("Agent", "a", "command: [x]\nenv: {KEY: {from_env: bad name}}"),
    doc("Task", "t", "agent: writer"),
]


@pytest.mark.parametrize("text", SAMPLES)
def test_schema_accepts_valid_documents(text: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(json_schema()).validate(yaml.safe_load(text))


@pytest.mark.parametrize("text", BAD_SAMPLES)
def test_schema_rejects_invalid_documents(text: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    assert not validator.is_valid(yaml.safe_load(text))


def test_schema_is_itself_a_valid_draft_2020_12_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(json_schema())
