"""parse_file on one file: every kind of bad input is reported with file:line:col, none raises."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from spec_repo import agent, doc, parse, parse_ok, task

ENV_NAME_RULE = "use letters, digits and '_', not starting with a digit"
NAME_RULE = "use lowercase letters, digits and '-' (at most 63)"
DURATION_RULE = "use a number and a unit: 90s, 10m, 2h, 1d"
KINDS_HINT = "(hint: one of Mission, Agent, Task, Workflow, WorkflowRun, Approval)"


class lib(str):  # lowercase: it reads as a marker in the tables below
    """An expected problem whose place and field are ours and whose wording is a library's.

    Equal to any problem that starts with it and goes on (PyYAML's or pydantic's words), so a
    new release of either cannot turn these tests red while file, line, column and field
    stay asserted.
    """

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(self) and len(other) > len(self)

    def __ne__(self, other: object) -> bool:
        return not self == other


def agent_with(name: str = "writer", extra: str = "") -> str:
    """An Agent whose spec starts `command: [x]` on line 5; `extra` lines follow from line 6."""
    return doc("Agent", name, f"command: [x]\n{extra}")


# (id, file text, expected problems). Agent specs: line 5 is `command`, `extra` starts on 6.
BAD_FILES = [
    (
        "yaml-unclosed-flow-mapping",
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: a\nspec: {}\n",
        [lib("a.yaml:4:5: invalid YAML: ")],
    ),
    (
        "yaml-bad-indentation",
        "apiVersion: mc/v1\nkind: Agent\n  metadata: {}\n",
        [lib("a.yaml:3:11: invalid YAML: ")],
    ),
    (
        "yaml-tab-indentation",
        "apiVersion: mc/v1\nkind: Agent\n\tmetadata: {}\n",
        [lib("a.yaml:3:1: invalid YAML: ")],
    ),
    (
        "yaml-unsafe-tag",
        "apiVersion: !!python/object/apply:os.system [ls]\n",
        [lib("a.yaml:1:13: invalid YAML: ")],
    ),
    (
        "yaml-duplicate-key",
        agent_with(extra="role: one\nrole: two"),
        ["a.yaml:7:3: invalid YAML: duplicate key 'role' (first on line 6)"],
    ),
    (
        "yaml-undefined-alias",
        agent_with(extra="role: *nothing"),
        [lib("a.yaml:6:9: invalid YAML: ")],
    ),
    (
        "wrong-types",
        doc("Agent", "a", "command: python a.py\nconcurrency: many\ncapabilities: write"),
        [
            lib("a.yaml:5:3: spec.command: "),
            lib("a.yaml:6:3: spec.concurrency: "),
            lib("a.yaml:7:3: spec.capabilities: "),
        ],
    ),
    (
        "wrong-type-of-label-value",
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: a, labels: {tier: 1}}\n"
        "spec: {command: [x]}\n",
        [lib("a.yaml:3:30: metadata.labels.tier: ")],
    ),
    (
        "wrong-type-spec-not-a-mapping",
        doc("Agent", "a") + "spec: [x]\n",
        [lib("a.yaml:4:1: spec: ")],
    ),
    (
        "wrong-type-bool-name",
        doc("Agent", "true", "command: [x]"),
        [lib("a.yaml:3:12: metadata.name: ")],
    ),
    (
        "wrong-enum-value",
        agent_with(extra="protocol: grpc\nstatus: gone"),
        [
            lib("a.yaml:6:3: spec.protocol: "),
            lib("a.yaml:7:3: spec.status: "),
        ],
    ),
    (
        "wrong-api-version",
        agent_with().replace("mc/v1", "mc/v2"),
        [lib("a.yaml:1:1: apiVersion: ")],
    ),
    (
        "unknown-kind",
        doc("Agnet", "a", "command: [x]"),
        [f"a.yaml:2:1: unknown kind 'Agnet' {KINDS_HINT}"],
    ),
    (
        "missing-kind",
        "apiVersion: mc/v1\nmetadata: {name: a}\nspec: {}\n",
        [f"a.yaml:1:1: missing `kind` {KINDS_HINT}"],
    ),
    (
        "unknown-spec-field",
        agent_with(extra="capabilites: [write]"),
        ["a.yaml:6:3: unknown field `spec.capabilites` (hint: did you mean `capabilities`?)"],
    ),
    (
        "unknown-top-level-field",
        "apiVersion: mc/v1\nkind: Agent\nmetdata: {name: a}\nspec: {command: [x]}\n",
        [
            "a.yaml:1:1: missing required field `metadata`",
            "a.yaml:3:1: unknown field `metdata` (hint: did you mean `metadata`?)",
        ],
    ),
    (
        "unknown-nested-field",
        task("t", "agent: writer\nretry: {max_atempts: 3}"),
        [
            "a.yaml:7:11: unknown field `spec.retry.max_atempts` "
            "(hint: did you mean `max_attempts`?)"
        ],
    ),
    (
        "unknown-field-in-list-item",
        doc("Workflow", "w", "steps:\n  - {id: a, agent: writer, dependson: [b]}"),
        ["a.yaml:6:30: unknown field `spec.steps.0.dependson` (hint: did you mean `depends_on`?)"],
    ),
    (
        "unknown-field-without-close-match",
        doc("Approval", "ok", "target: Task/t\ndigest: sha256:" + "0" * 64 + "\nzzz: 1"),
        ["a.yaml:7:3: unknown field `spec.zzz` (hint: allowed: target, digest, decision, reason)"],
    ),
    (
        "missing-required-fields",
        "apiVersion: mc/v1\nkind: Task\nmetadata: {labels: {}}\nspec: {agent: writer}\n",
        [
            "a.yaml:3:1: missing required field `metadata.name`",
            "a.yaml:4:1: missing required field `spec.title`",
        ],
    ),
    ("missing-spec", doc("Agent", "a"), ["a.yaml:1:1: missing required field `spec`"]),
    (
        "missing-agent-and-requires",
        doc("Task", "t", "title: T"),
        ["a.yaml:4:1: spec: a task needs `agent: NAME` or `requires: [capability, …]`"],
    ),
    (
        "empty-command",
        doc("Agent", "a", "command: []"),
        ["a.yaml:5:3: spec.command: List should have at least 1 item after validation, not 0"],
    ),
    (
        "blank-program",
        doc("Agent", "a", "command: ['  ', x]"),
        ["a.yaml:5:3: spec.command: the program (first element of command) is empty"],
    ),
    (
        "approver-declared-twice",
        doc("Mission", "m", "approvers: [{name: alice}, {name: alice}]"),
        ["a.yaml:5:3: spec.approvers: approver declared twice: alice"],
    ),
    (
        "policy-rule-named-twice",
        doc(
            "Mission",
            "m",
            "policy: {rules: [{name: ok, decide: LOW}, {name: ok, match: {kind: [Task]}, "
            "decide: HIGH}]}",
        ),
        ["a.yaml:5:12: spec.policy.rules: policy rule named twice: ok (plans cite rules by name)"],
    ),
    (
        "name-uppercase",
        agent_with("Writer"),
        [f"a.yaml:3:12: metadata.name: invalid name 'Writer'; {NAME_RULE}"],
    ),
    (
        "name-with-slash",
        agent_with("a/b"),
        [f"a.yaml:3:12: metadata.name: invalid name 'a/b'; {NAME_RULE}"],
    ),
    (
        "name-with-dot-dot",
        agent_with("'..'"),
        [f"a.yaml:3:12: metadata.name: invalid name '..'; {NAME_RULE}"],
    ),
    (
        "name-path-traversal",
        agent_with("../etc"),
        [f"a.yaml:3:12: metadata.name: invalid name '../etc'; {NAME_RULE}"],
    ),
    (
        "name-leading-dash",
        agent_with("'-a'"),
        [f"a.yaml:3:12: metadata.name: invalid name '-a'; {NAME_RULE}"],
    ),
    (
        "name-too-long",
        agent_with("a" * 64),
        [lib("a.yaml:3:12: metadata.name: ")],
    ),
    (
        "name-in-a-reference",
        task("t", "agent: Writer\ndepends_on: [ok, Not_ok]"),
        [
            f"a.yaml:6:3: spec.agent: invalid name 'Writer'; {NAME_RULE}",
            f"a.yaml:7:20: spec.depends_on.1: invalid name 'Not_ok'; {NAME_RULE}",
        ],
    ),
    (
        "bad-durations",
        agent_with(extra="timeout: 10 minutes\nheartbeat_timeout: 5"),
        [
            f"a.yaml:6:3: spec.timeout: invalid duration '10 minutes'; {DURATION_RULE}",
            lib("a.yaml:7:3: spec.heartbeat_timeout: "),
        ],
    ),
    (
        "bad-durations-nested",
        task("t", "agent: writer\nretry: {initial_interval: -1s, max_interval: 5x}"),
        [
            f"a.yaml:7:11: spec.retry.initial_interval: invalid duration '-1s'; {DURATION_RULE}",
            f"a.yaml:7:34: spec.retry.max_interval: invalid duration '5x'; {DURATION_RULE}",
        ],
    ),
    (
        "negative-money",
        agent_with(extra="budget: {daily_usd: -1}"),
        [lib("a.yaml:6:12: spec.budget.daily_usd: ")],
    ),
    (
        "money-with-too-many-decimals",
        agent_with(extra="budget: {per_run_usd: 0.0000001}"),
        [
            "a.yaml:6:12: spec.budget.per_run_usd: "
            "Decimal input should have no more than 6 decimal places"
        ],
    ),
    (
        "money-not-a-number",
        agent_with(extra="budget: {daily_usd: free, per_run_usd: lots}"),
        [
            lib("a.yaml:6:12: spec.budget.daily_usd: "),
            lib("a.yaml:6:29: spec.budget.per_run_usd: "),
        ],
    ),
    (
        "secret-with-bad-variable-name",
        agent_with(extra='env: {KEY: {from_env: "bad name"}}'),
        [
            "a.yaml:6:15: spec.env.KEY.from_env: invalid environment variable name "
            f"'bad name'; {ENV_NAME_RULE}"
        ],
    ),
    (
        "env-with-bad-variable-name",
        agent_with(extra="env: {1KEY: value}"),
        [f"a.yaml:6:9: spec.env: invalid environment variable name '1KEY'; {ENV_NAME_RULE}"],
    ),
    (
        "secret-with-unknown-field",
        agent_with(extra="env: {KEY: {from_env: KEY, value: x}}"),
        ["a.yaml:6:30: unknown field `spec.env.KEY.value` (hint: allowed: from_env)"],
    ),
    (
        "env-value-not-a-string",
        agent_with(extra="env: {PORT: 8080}"),
        [lib("a.yaml:6:9: spec.env.PORT: ")],
    ),
    (
        "approval-target-and-digest",
        doc("Approval", "ok", "target: task/deploy\ndigest: abc"),
        [
            "a.yaml:5:3: spec.target: invalid target 'task/deploy'; "
            "expected Kind/name, e.g. Task/deploy",
            "a.yaml:6:3: spec.digest: invalid digest 'abc'; expected sha256:<64 hex digits>",
        ],
    ),
    (
        "document-is-a-list",
        "- apiVersion: mc/v1\n- kind: Agent\n",
        ["a.yaml:1:1: document 1 is not a mapping (apiVersion/kind/…)"],
    ),
    (
        "document-is-a-scalar",
        "just some text\n",
        ["a.yaml:1:1: document 1 is not a mapping (apiVersion/kind/…)"],
    ),
    (
        "problem-after-empty-documents",  # empty documents still count when locating the rest
        "---\n---\n# nothing\n---\n" + agent_with("Bad"),
        [f"a.yaml:7:12: metadata.name: invalid name 'Bad'; {NAME_RULE}"],
    ),
    ("empty-file", "", ["a.yaml: file is empty: expected at least one document"]),
    (
        "whitespace-only-file",
        "  \n\n    \n",
        ["a.yaml: file is empty: expected at least one document"],
    ),
    (
        "comments-only-file",
        "# todo\n---\n...\n",
        ["a.yaml: file is empty: expected at least one document"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_is_reported_with_its_place(text: str, expected: list[str]) -> None:
    docs, problems = parse("a.yaml", text)
    assert docs == []
    assert problems == expected


def test_several_problems_in_one_file_are_all_reported_in_one_run() -> None:
    text = (
        agent_with("Writer", "timeout: soon\nrol: x")  # lines 1-7
        + "---\n"  # line 8
        + doc("Agnet", "a")  # lines 9-11
        + "---\n"  # line 12
        + task("fine")  # lines 13-18
        + "---\n"  # line 19
        + doc("Task", "t", "title: T\nagent: writer\npriority: high")  # lines 20-26
    )
    docs, problems = parse("tasks/mixed.yaml", text)
    assert [d.key for d in docs] == ["Task/fine"]
    assert [d.index for d in docs] == [2]
    assert problems == [
        f"tasks/mixed.yaml:3:12: metadata.name: invalid name 'Writer'; {NAME_RULE}",
        f"tasks/mixed.yaml:6:3: spec.timeout: invalid duration 'soon'; {DURATION_RULE}",
        "tasks/mixed.yaml:7:3: unknown field `spec.rol` (hint: did you mean `role`?)",
        f"tasks/mixed.yaml:10:1: unknown kind 'Agnet' {KINDS_HINT}",
        lib("tasks/mixed.yaml:26:3: spec.priority: "),
    ]


def test_a_bad_document_does_not_hide_the_good_ones() -> None:
    docs, problems = parse("a.yaml", agent_with() + "---\n- a\n- b\n---\n" + task("t"))
    assert [(d.key, d.index) for d in docs] == [("Agent/writer", 0), ("Task/t", 2)]
    assert problems == ["a.yaml:7:1: document 2 is not a mapping (apiVersion/kind/…)"]


def test_non_utf8_bytes_are_reported_at_their_line() -> None:
    data = agent_with().encode().replace(b"command: [x]", b"command: [caf\xe9]")
    assert parse("agents/a.yaml", data) == ([], ["agents/a.yaml:5: not UTF-8 text (byte 0xe9)"])


def test_a_utf16_file_is_not_utf8() -> None:
    data = agent_with().encode("utf-16")
    assert parse("a.yaml", data) == ([], ["a.yaml:1: not UTF-8 text (byte 0xff)"])


def test_a_50_mb_file_is_refused_without_decoding_or_parsing_it() -> None:
    # Invalid UTF-8 and invalid YAML throughout: any other answer means it was read.
    data = b"\xff: [" * (50 * 1024 * 1024 // 4)
    assert parse("big.yaml", data) == ([], ["big.yaml: file is 50.0 MB; the limit is 10 MB"])


@pytest.mark.timeout(10)
def test_billion_laughs_is_reported_not_expanded() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    docs, problems = parse("bomb.yaml", "\n".join(lines) + "\n")
    assert docs == []
    assert problems == ["bomb.yaml: YAML aliases expand to too many nodes (an alias bomb?)"]


@pytest.mark.timeout(10)
def test_billion_laughs_inside_a_spec_is_reported() -> None:
    lines = ["  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = task("t") + "  inputs:\n    bomb:\n" + "\n".join("  " + ln for ln in lines) + "\n"
    docs, problems = parse("bomb.yaml", text)
    assert docs == []
    assert problems == ["bomb.yaml: YAML aliases expand to too many nodes (an alias bomb?)"]


# Files with fewer than 100 YAML indicators ([ { - ? :) go through libyaml's C composer, larger
# ones through the bounded Python composer; each case below runs on both.
PADDING = "---\n" + "\n".join(f"- [{i}]" for i in range(60)) + "\n"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("levels", [24, 40], ids=["small-file", "large-file"])
def test_nested_merge_keys_do_not_grow_exponentially(levels: int) -> None:
    lines = ["a0: &a0 {x: 1, y: 2}"]
    lines += [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, levels)]
    problems = parse("merge.yaml", "\n".join(lines) + "\n")[1]
    assert problems == [f"merge.yaml:1:1: missing `kind` {KINDS_HINT}"]


@pytest.mark.parametrize("padding", ["", PADDING], ids=["small-file", "large-file"])
def test_duplicate_keys_are_refused_on_both_paths(padding: str) -> None:
    text = agent_with(extra="env: {A: x, B: y, A: z}") + padding
    assert parse("a.yaml", text) == (
        [],
        ["a.yaml:6:21: invalid YAML: duplicate key 'A' (first on line 6)"],
    )


@pytest.mark.parametrize("padding", ["", PADDING], ids=["small-file", "large-file"])
def test_both_paths_parse_alike(padding: str) -> None:
    text = agent_with(extra="env: {A: x, B: {from_env: B}}\ncapabilities: [write, review]")
    docs, problems = parse("a.yaml", text + padding)
    assert [d.spec for d in docs] == [d.spec for d in parse_ok("a.yaml", text)]
    assert problems == (
        ["a.yaml:9:1: document 2 is not a mapping (apiVersion/kind/…)"] if padding else []
    )


def test_merge_keys_keep_yaml_semantics() -> None:
    text = textwrap.dedent("""\
        apiVersion: mc/v1
        kind: Task
        metadata: {name: t}
        spec:
          title: T
          agent: writer
          inputs:
            base: &base {a: 1, b: 2}
            other: &other {b: 3, c: 4}
            merged: {<<: [*base, *other], c: 5}
        """)
    (parsed,) = parse_ok("t.yaml", text)
    assert parsed.spec["inputs"]["merged"] == {"a": 1, "b": 2, "c": 5}


def test_deep_nesting_is_reported_and_does_not_crash_the_process() -> None:
    # libyaml's C composer overflows the C stack on this; run it apart so a crash is a failure.
    program = textwrap.dedent("""\
        from specs.loader import parse_file
        for data in (b"[" * 60000 + b"]" * 60000, b"a:\\n" + b"".join(
                b" " * i + b"b:\\n" for i in range(1, 200))):
            print([str(p) for p in parse_file("deep.yaml", data)[1]])
        """)
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "['deep.yaml:1:101: invalid YAML: nested deeper than 100 levels']",
        "['deep.yaml:100:100: invalid YAML: nested deeper than 100 levels']",
    ]


def test_secret_reference_and_plain_values_are_accepted() -> None:
    text = agent_with(extra="env: {KEY: {from_env: KEY}, _Mixed_1: plain, EMPTY: ''}")
    (parsed,) = parse_ok("a.yaml", text)
    assert parsed.spec["env"] == {"KEY": {"from_env": "KEY"}, "_Mixed_1": "plain", "EMPTY": ""}


def test_telegram_token_is_a_secret_reference() -> None:
    good = doc("Mission", "m", "telegram: {chat_id: -100, token: {from_env: TG_TOKEN}}")
    bad = doc("Mission", "m", "telegram: {chat_id: -100, token: '123:abc'}")
    assert parse_ok("mission.yaml", good)[0].spec["telegram"]["token"] == {"from_env": "TG_TOKEN"}
    assert parse("mission.yaml", bad)[1] == [lib("mission.yaml:5:29: spec.telegram.token: ")]


def test_every_kind_parses_with_defaults_filled_in() -> None:
    text = "\n---\n".join(
        [
            doc("Mission", "demo"),
            agent("writer", "write"),
            task("draft", "requires: [write]\ndepends_on: [research]"),
            doc(
                "Workflow",
                "flow",
                "inputs: {goal: {required: true}}\nsteps:\n  - {id: a, agent: w}",
            ),
            doc("WorkflowRun", "run-1", "workflow: flow\ninputs: {goal: x}"),
            doc("Approval", "ok", "target: Task/draft\ndigest: sha256:" + "a" * 64),
        ]
    )
    docs = parse_ok("all.yaml", text)
    assert [(d.key, d.index, d.path) for d in docs] == [
        ("Mission/demo", 0, "all.yaml"),
        ("Agent/writer", 1, "all.yaml"),
        ("Task/draft", 2, "all.yaml"),
        ("Workflow/flow", 3, "all.yaml"),
        ("WorkflowRun/run-1", 4, "all.yaml"),
        ("Approval/ok", 5, "all.yaml"),
    ]
    mission, writer, draft, flow, run, approval = (d.spec for d in docs)
    assert mission["mode"] == "normal" and mission["executor"] == {"kind": "local", "address": None}
    assert mission["policy"] == {"rules": [], "approval_ttl": "24h"}
    assert (
        writer["concurrency"] == 1 and writer["timeout"] == "10m" and writer["status"] == "active"
    )
    assert draft["retry"]["max_attempts"] == 3 and draft["approval"] == "none"
    assert flow["steps"][0]["max_rework"] == 2 and flow["inputs"]["goal"]["required"] is True
    assert run == {"workflow": "flow", "inputs": {"goal": "x"}, "retry_nonce": 0}
    assert approval["decision"] == "approve"
    assert all(d.digest.startswith("sha256:") and len(d.digest) == 71 for d in docs)


def test_money_and_labels_become_plain_json() -> None:
    text = (
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: a, labels: {team: core}}\n"
        "spec: {command: [x], budget: {daily_usd: 5.50, per_run_usd: '0.25'}}\n"
    )
    (parsed,) = parse_ok("a.yaml", text)
    assert parsed.labels == {"team": "core"}
    assert parsed.spec["budget"] == {"daily_usd": "5.5", "per_run_usd": "0.25"}
