"""build_desired: checks across documents and files, each reported at its file:line:col."""

from __future__ import annotations

import pytest
from spec_repo import BASE, MISSION, agent, build, build_problems, doc, task

from specs.graph import find_cycle, topological_order


def workflow(name: str, steps: str, inputs: str = "") -> str:
    """A Workflow; without `inputs` its `steps:` is line 5 and the steps are lines 6, 7, …"""
    body = (f"inputs:\n{inputs}\n" if inputs else "") + "steps:\n" + steps
    return doc("Workflow", name, body)


FEATURE_DEV = workflow(
    "feature-dev",
    inputs="  goal: {required: true}\n  env: {enum: [dev, prod], default: dev}\n  note: {}",
    steps=(
        "  - {id: plan, agent: writer, prompt: 'Plan: {{ inputs.goal }}'}\n"
        "  - {id: implement, agent: writer, depends_on: [plan]}\n"
        "  - {id: verify, requires: [review], depends_on: [implement], verifies: implement}"
    ),
)


def run(name: str, body: str) -> str:
    """A WorkflowRun of feature-dev; `body` lines start on line 6."""
    return doc("WorkflowRun", name, f"workflow: feature-dev\n{body}")


# (id, files added to BASE — None removes one —, expected problems)
BAD_REPOS = [
    (
        "duplicate-across-files",
        {"agents/zz-writer.yaml": agent("writer", "write")},
        ["agents/zz-writer.yaml:3:12: duplicate Agent/writer (first in agents/writer.yaml)"],
    ),
    (
        "duplicate-in-one-file",
        {"tasks/t.yaml": task("a") + "---\n" + task("b") + "---\n" + task("a")},
        ["tasks/t.yaml:17:12: duplicate Task/a (first in tasks/t.yaml)"],
    ),
    (
        "duplicate-of-a-later-document",
        {"tasks/t.yaml": task("b") + "---\n" + task("a") + "---\n" + task("a")},
        ["tasks/t.yaml:17:12: duplicate Task/a (first in tasks/t.yaml document 2)"],
    ),
    (
        "same-name-in-two-kinds-is-fine-but-mission-is-missing",
        {"mission.yaml": None, "tasks/writer.yaml": task("writer")},
        ["mission.yaml: missing the Mission document (hint: create mission.yaml (`mc init`))"],
    ),
    (
        "mission-outside-mission-yaml",
        {"mission.yaml": None, "config/mission.yaml": MISSION},
        ["config/mission.yaml:2:1: the Mission belongs in mission.yaml"],
    ),
    (
        "two-missions",
        {"extra/other.yaml": doc("Mission", "other")},
        [
            "extra/other.yaml:2:1: a repo declares exactly one Mission",
            "extra/other.yaml:2:1: the Mission belongs in mission.yaml",
        ],
    ),
    (
        "unknown-agent-with-hint",
        {"tasks/t.yaml": task("t", "agent: writr")},
        ["tasks/t.yaml:6:3: unknown agent 'writr' (hint: did you mean 'writer'?)"],
    ),
    (
        "unknown-agent-without-hint",
        {"tasks/t.yaml": task("t", "agent: zed")},
        ["tasks/t.yaml:6:3: unknown agent 'zed'"],
    ),
    (
        "unknown-dependency",
        {
            "tasks/t.yaml": task("t", "agent: writer\ndepends_on: [research, reserch]"),
            "tasks/research.yaml": task("research"),
        },
        ["tasks/t.yaml:7:26: depends on unknown task 'reserch' (hint: did you mean 'research'?)"],
    ),
    (
        "task-cycle-across-files-reported-once",
        {
            "tasks/a.yaml": task("a", "agent: writer\ndepends_on: [b]"),
            "tasks/b.yaml": task("b", "agent: writer\ndepends_on: [c]"),
            "tasks/c.yaml": task("c", "agent: writer\ndepends_on: [a]"),
            "tasks/d.yaml": task("d", "agent: writer\ndepends_on: [a, c]"),
        },
        ["tasks/a.yaml:7:3: dependency cycle: a → b → c → a"],
    ),
    (
        "two-separate-cycles",
        {
            "tasks/a.yaml": task("a", "agent: writer\ndepends_on: [b]"),
            "tasks/b.yaml": task("b", "agent: writer\ndepends_on: [a]"),
            "tasks/x.yaml": task("x", "agent: writer\ndepends_on: [x]"),
        },
        [
            "tasks/a.yaml:7:3: dependency cycle: a → b → a",
            "tasks/x.yaml:7:3: dependency cycle: x → x",
        ],
    ),
    (
        "self-dependency",
        {"tasks/a.yaml": task("a", "agent: writer\ndepends_on: [a]")},
        ["tasks/a.yaml:7:3: dependency cycle: a → a"],
    ),
    (
        "capability-nobody-has",
        {"tasks/t.yaml": task("t", "requires: [write, deploy]")},
        ["tasks/t.yaml:6:3: no agent has the capabilities: deploy, write"],
    ),
    (
        "capabilities-split-across-agents",  # one agent must have them all
        {
            "agents/deployer.yaml": agent("deployer", "deploy"),
            "tasks/t.yaml": task("t", "requires: [review, deploy]"),
        },
        ["tasks/t.yaml:6:3: no agent has the capabilities: deploy, review"],
    ),
    (
        "named-agent-lacks-capability",
        {"tasks/t.yaml": task("t", "agent: writer\nrequires: [write, review, deploy]")},
        ["tasks/t.yaml:7:3: agent 'writer' lacks capability deploy, review"],
    ),
    (
        "workflow-step-cycle",
        {
            "workflows/w.yaml": workflow(
                "w",
                "  - {id: a, agent: writer, depends_on: [c]}\n"
                "  - {id: b, agent: writer, depends_on: [a]}\n"
                "  - {id: c, agent: writer, depends_on: [b]}",
            )
        },
        ["workflows/w.yaml:6:30: step cycle: a → c → b → a"],
    ),
    (
        "workflow-unknown-step-ref",
        {
            "workflows/w.yaml": workflow(
                "w",
                "  - {id: plan, agent: writer}\n"
                "  - {id: build, agent: writer, depends_on: [plann]}",
            )
        },
        ["workflows/w.yaml:7:47: depends on unknown step 'plann' (hint: did you mean 'plan'?)"],
    ),
    (
        "workflow-duplicate-step-id",
        {
            "workflows/w.yaml": workflow(
                "w",
                "  - {id: a, agent: writer}\n"
                "  - {id: b, agent: writer}\n"
                "  - {id: a, agent: writer}",
            )
        },
        ["workflows/w.yaml:8:8: duplicate step id 'a'"],
    ),
    (
        "workflow-verifies-unknown-step",
        {
            "workflows/w.yaml": workflow(
                "w",
                "  - {id: build, agent: writer}\n  - {id: check, agent: reviewer, verifies: buld}",
            )
        },
        ["workflows/w.yaml:7:36: verifies unknown step 'buld' (hint: did you mean 'build'?)"],
    ),
    (
        "workflow-step-runners",
        {
            "workflows/w.yaml": workflow(
                "w",
                "  - {id: a, agent: writter}\n"
                "  - {id: b, requires: [fly]}\n"
                "  - {id: c, agent: writer, requires: [review]}",
            )
        },
        [
            "workflows/w.yaml:6:15: unknown agent 'writter' (hint: did you mean 'writer'?)",
            "workflows/w.yaml:7:15: no agent has the capabilities: fly",
            "workflows/w.yaml:8:30: agent 'writer' lacks capability review",
        ],
    ),
    (
        "run-of-unknown-workflow",
        {"runs/r.yaml": doc("WorkflowRun", "r", "workflow: feature-dv")},
        ["runs/r.yaml:5:3: unknown workflow 'feature-dv' (hint: did you mean 'feature-dev'?)"],
    ),
    (
        "run-missing-required-input",
        {"runs/r.yaml": run("r", "inputs: {note: hi}")},
        ["runs/r.yaml:6:3: missing required input 'goal'"],
    ),
    (
        "run-missing-inputs-entirely",
        {"runs/r.yaml": run("r", "")},
        ["runs/r.yaml:4:1: missing required input 'goal'"],
    ),
    (
        "run-input-outside-enum",
        {"runs/r.yaml": run("r", "inputs: {goal: x, env: qa}")},
        ["runs/r.yaml:6:21: input 'env' is 'qa'; expected one of dev, prod"],
    ),
    (
        "run-unknown-input",
        {"runs/r.yaml": run("r", "inputs: {goal: x, gaol: y}")},
        [
            "runs/r.yaml:6:21: unknown input of workflow 'feature-dev': 'gaol' "
            "(hint: did you mean 'goal'?)"
        ],
    ),
    (
        "approval-outside-approvals",
        {"tasks/ok.yaml": doc("Approval", "ok", "target: Task/t\ndigest: sha256:" + "0" * 64)},
        ["tasks/ok.yaml:2:1: approvals must live under approvals/"],
    ),
    (
        "every-problem-at-once",
        {
            "mission.yaml": None,
            "tasks/a.yaml": task("a", "agent: nobody\ndepends_on: [a]"),
            "runs/r.yaml": doc("WorkflowRun", "r", "workflow: nothing"),
        },
        [
            "mission.yaml: missing the Mission document (hint: create mission.yaml (`mc init`))",
            "runs/r.yaml:5:3: unknown workflow 'nothing'",
            "tasks/a.yaml:6:3: unknown agent 'nobody'",
            "tasks/a.yaml:7:3: dependency cycle: a → a",
        ],
    ),
]


def _repo(changes: dict[str, str | None]) -> dict[str, str]:
    files = {**BASE, "workflows/feature-dev.yaml": FEATURE_DEV}
    for path, text in changes.items():
        if text is None:
            del files[path]
        else:
            files[path] = text
    return files


@pytest.mark.parametrize(
    ("changes", "expected"), [c[1:] for c in BAD_REPOS], ids=[c[0] for c in BAD_REPOS]
)
def test_cross_document_problem_is_reported_at_its_place(
    changes: dict[str, str | None], expected: list[str]
) -> None:
    assert build_problems(_repo(changes)) == expected


def test_a_valid_repo_builds_with_every_document() -> None:
    files = _repo(
        {
            "tasks/research.yaml": task("research", "requires: [write]"),
            "tasks/draft.yaml": task(
                "draft", "agent: reviewer\nrequires: [review]\ndepends_on: [research]"
            )
            + "---\n"
            + task("publish", "agent: writer\ndepends_on: [draft, research]"),
            "runs/login.yaml": run("add-login", "inputs: {goal: Add a login page, env: prod}"),
            "runs/other.yaml": run("defaults", "inputs: {goal: x}"),
            "approvals/publish.yaml": doc(
                "Approval", "publish-alice", "target: Task/publish\ndigest: sha256:" + "0" * 64
            ),
        }
    )
    desired = build(files, commit="abc123", dirty=["tasks/draft.yaml"])
    assert sorted(desired.docs) == [
        "Agent/reviewer",
        "Agent/writer",
        "Approval/publish-alice",
        "Mission/demo",
        "Task/draft",
        "Task/publish",
        "Task/research",
        "Workflow/feature-dev",
        "WorkflowRun/add-login",
        "WorkflowRun/defaults",
    ]
    assert desired.commit == "abc123"
    assert desired.dirty_paths == ("tasks/draft.yaml",)
    assert desired.mission_name == "demo"
    assert desired.mission.path == "mission.yaml"
    assert [d.name for d in desired.of_kind("Task")] == ["draft", "publish", "research"]
    publish = desired.get("Task", "publish")
    assert publish is not None and (publish.path, publish.index) == ("tasks/draft.yaml", 1)
    assert desired.get("Task", "nope") is None


def test_a_long_dependency_chain_builds() -> None:
    # Iterative graph walks: a deep chain must not hit Python's recursion limit.
    chain = "---\n".join(
        task(f"t{i}", f"agent: writer\ndepends_on: [t{i - 1}]" if i else "agent: writer")
        for i in range(3000)
    )
    desired = build({**BASE, "tasks/chain.yaml": chain})
    assert len(desired.of_kind("Task")) == 3000


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({}, None),
        ({"a": []}, None),
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["c"], "c": []}, None),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"a": ["b", "x"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
        ({"a": ["missing"]}, None),
        ({"a": ["b"], "b": [], "c": ["a", "b"]}, None),
    ],
)
def test_find_cycle(graph: dict[str, list[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_graph_helpers_walk_100k_nodes_without_recursion() -> None:
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(100_000)}
    chain["n100000"] = []
    assert find_cycle(chain) is None
    order = topological_order({k: v for k, v in chain.items()})
    assert order[0] == "n100000" and order[-1] == "n0"
    chain["n100000"] = ["n0"]
    cycle = find_cycle(chain)
    assert cycle is not None and len(cycle) == 100_002


def test_topological_order_puts_dependencies_first() -> None:
    graph = {"publish": ["draft", "research"], "draft": ["research"], "research": [], "x": ["?"]}
    order = topological_order(graph)
    assert sorted(order) == ["draft", "publish", "research", "x"]
    assert order.index("research") < order.index("draft") < order.index("publish")
