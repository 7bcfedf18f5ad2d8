"""Values mean what was written (YAML 1.2 core schema) and every number has a documented bound.

Tables read as documentation: what a plain scalar in a free-form value becomes, what is
refused at its place, and the maxima of durations, sizes, money and counts (README, "The
mission repo").
"""

from __future__ import annotations

import pytest
from spec_repo import doc, parse, parse_ok, task

# (written in `inputs:`, what the task receives)
YAML12_SCALARS = [
    ("NO", "NO"),
    ("no", "no"),
    ("yes", "yes"),
    ("on", "on"),
    ("Off", "Off"),
    ("y", "y"),
    ("0755", 755),
    ("0o755", 493),
    ("0x1F", 31),
    ("12:30:00", "12:30:00"),
    ("2024-01-01", "2024-01-01"),
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("1.10", 1.1),
    ("1e3", 1000.0),
    (".5", 0.5),
    ("-7", -7),
    ("true", True),
    ("False", False),
    ("TRUE", True),
    ("null", None),
    ("~", None),
    ("'NO'", "NO"),
    ('"1.10"', "1.10"),
    ("!!str 0755", "0755"),
    ("=", "="),
]


@pytest.mark.parametrize(("written", "value"), YAML12_SCALARS, ids=[w for w, _ in YAML12_SCALARS])
def test_a_free_form_value_keeps_its_yaml_1_2_meaning(written: str, value: object) -> None:
    (parsed,) = parse_ok("tasks/t.yaml", task("t", f"agent: writer\ninputs:\n  x: {written}"))
    got = parsed.spec["inputs"]["x"]
    assert got == value and type(got) is type(value)


def test_workflow_enum_and_default_keep_what_was_written() -> None:
    text = doc(
        "Workflow",
        "deploy",
        "inputs:\n  region: {required: true, enum: [SE, NO, DK], default: NO}\n"
        "steps:\n  - {id: go, agent: w, prompt: 'Deploy to {{ inputs.region }}'}",
    )
    (parsed,) = parse_ok("workflows/deploy.yaml", text)
    assert parsed.spec["inputs"]["region"]["enum"] == ["SE", "NO", "DK"]
    assert parsed.spec["inputs"]["region"]["default"] == "NO"


def test_a_label_may_say_on() -> None:
    text = "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: a, labels: {canary: on}}\n"
    (parsed,) = parse_ok("agents/a.yaml", text + "spec: {command: [x]}\n")
    assert parsed.labels == {"canary": "on"}


def test_typed_switches_still_read_yes_as_true() -> None:
    """A typed boolean field keeps accepting what people write for it; only free-form
    values must stay text."""
    text = doc("Workflow", "w", "inputs: {goal: {required: yes}}\nsteps:\n  - {id: a, agent: w}")
    (parsed,) = parse_ok("workflows/w.yaml", text)
    assert parsed.spec["inputs"]["goal"]["required"] is True


def agent_with(extra: str) -> str:
    """An Agent whose `extra` lines start on line 6."""
    return doc("Agent", "a", f"command: [x]\n{extra}")


MAXIMA = "the maximum"
# (id, file text, expected problems)
OUT_OF_BOUNDS = [
    (
        "approval-ttl-800000d",
        doc("Mission", "m", "policy: {approval_ttl: 800000d}"),
        [f"a.yaml:5:12: spec.policy.approval_ttl: duration 800000d is longer than {MAXIMA} 366d"],
    ),
    (
        "duration-with-40-digits",
        doc("Mission", "m", "policy: {approval_ttl: " + "9" * 40 + "s}"),
        [
            f"a.yaml:5:12: spec.policy.approval_ttl: duration {'9' * 39}… is longer than"
            f" {MAXIMA} 366d"
        ],
    ),
    (
        "every-duration-field",
        agent_with(
            "timeout: 367d\nheartbeat_timeout: 10000h\nlimits: {cpu_time: 600000m}\n"
            "budget: {daily_usd: 1000000.000001}"
        ),
        [
            f"a.yaml:6:3: spec.timeout: duration 367d is longer than {MAXIMA} 366d",
            f"a.yaml:7:3: spec.heartbeat_timeout: duration 10000h is longer than {MAXIMA} 366d",
            f"a.yaml:8:12: spec.limits.cpu_time: duration 600000m is longer than {MAXIMA} 366d",
            "a.yaml:9:12: spec.budget.daily_usd: Input should be less than or equal to 1000000",
        ],
    ),
    (
        "retry-intervals",
        task("t", "agent: writer\nretry: {initial_interval: 400d, max_interval: 99999999s}"),
        [
            f"a.yaml:7:11: spec.retry.initial_interval: duration 400d is longer than {MAXIMA} 366d",
            f"a.yaml:7:35: spec.retry.max_interval: duration 99999999s is longer than {MAXIMA}"
            " 366d",
        ],
    ),
    (
        "sizes",
        agent_with("limits: {memory: 2048Ti, file_size: 5Pi}"),
        [
            f"a.yaml:6:12: spec.limits.memory: size 2048Ti is larger than {MAXIMA} 1024Ti",
            "a.yaml:6:28: spec.limits.file_size: invalid size '5Pi'; use bytes or a binary unit:"
            " 512Ki, 25Mi, 2Gi, 1Ti",
        ],
    ),
    (
        "counts",
        task(
            "t",
            "agent: writer\npriority: 1000001\n"
            "retry: {max_attempts: 101, non_retryable_exit_codes: [256]}",
        ),
        [
            "a.yaml:7:3: spec.priority: Input should be less than or equal to 1000000",
            "a.yaml:8:11: spec.retry.max_attempts: Input should be less than or equal to 100",
            "a.yaml:8:57: spec.retry.non_retryable_exit_codes.0: "
            "Input should be less than or equal to 255",
        ],
    ),
    (
        "retry-nonce-beyond-the-state-column",
        doc("WorkflowRun", "r", "workflow: w\nretry_nonce: 3000000000"),
        ["a.yaml:6:3: spec.retry_nonce: Input should be less than or equal to 1000000000"],
    ),
    (
        "agent-counts",
        agent_with("concurrency: 1025\nlimits: {open_files: 2000000}"),
        [
            "a.yaml:6:3: spec.concurrency: Input should be less than or equal to 1024",
            "a.yaml:7:12: spec.limits.open_files: Input should be less than or equal to 1048576",
        ],
    ),
    (
        "a-number-json-cannot-carry",
        task("t", "agent: writer\ninputs: {a: .inf}"),
        ["a.yaml:7:15: invalid YAML: .inf is not a finite number a JSON reader can hold; quote it"],
    ),
    (
        "an-overflowing-float",
        task("t", "agent: writer\ninputs: {a: 1e999}"),
        [
            "a.yaml:7:15: invalid YAML: 1e999 is not a finite number a JSON reader can hold;"
            " quote it"
        ],
    ),
    (
        "an-integer-beyond-64-bits",
        task("t", "agent: writer\ninputs: {id: 123456789012345678901234567890}"),
        [
            "a.yaml:7:16: invalid YAML: integer 123456789012345678901234567890 is beyond 64"
            " bits; quote it to keep it as text"
        ],
    ),
    (
        "a-5000-digit-integer",
        task("t", "agent: writer\ninputs: {id: " + "7" * 5000 + "}"),
        [
            f"a.yaml:7:16: invalid YAML: integer {'7' * 39}… is beyond 64 bits;"
            " quote it to keep it as text"
        ],
    ),
    (
        "a-yaml-1.1-tag",
        task("t", "agent: writer\ninputs: {when: !!timestamp 2024-01-01}"),
        [
            "a.yaml:7:18: invalid YAML: could not determine a constructor for the tag"
            " 'tag:yaml.org,2002:timestamp'"
        ],
    ),
    (
        "a-1.1-boolean-under-an-explicit-tag",
        task("t", "agent: writer\ninputs: {flag: !!bool yes}"),
        ["a.yaml:7:18: invalid YAML: 'yes' is not a YAML 1.2 boolean (true or false)"],
    ),
    (
        "text-given-a-number-is-quoted-as-written",
        task("t", "agent: writer\nprompt: 1.10"),
        [
            "a.yaml:7:3: spec.prompt: expected text, not 1.10 (a number)"
            ' (hint: quote it to keep it as written: "1.10")'
        ],
    ),
    (
        "an-env-value-given-a-boolean",
        agent_with("env: {DEBUG: TRUE}"),
        [
            "a.yaml:6:9: spec.env.DEBUG: expected text, not TRUE (a boolean)"
            ' (hint: quote it to keep it as written: "TRUE")'
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in OUT_OF_BOUNDS], ids=[c[0] for c in OUT_OF_BOUNDS]
)
def test_out_of_bounds_values_are_refused_at_their_place(text: str, expected: list[str]) -> None:
    docs, problems = parse("a.yaml", text)
    assert docs == []
    assert problems == expected


def test_the_maxima_themselves_are_accepted() -> None:
    text = doc(
        "Mission",
        "m",
        "policy: {approval_ttl: 366d}\nbudget: {daily_usd: 1000000}\n"
        "telegram: {chat_id: -1001234567890, token: {from_env: T}}",
    )
    (parsed,) = parse_ok("mission.yaml", text)
    assert parsed.spec["policy"]["approval_ttl"] == "366d"
    assert parsed.spec["budget"]["daily_usd"] == "1000000"
