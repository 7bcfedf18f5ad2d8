"""Spec digests: approvals bind to them, so formatting must not move them and any change must."""

from __future__ import annotations

import pytest
from spec_repo import parse_ok

from specs.loader import digest_of

TASK = """\
apiVersion: mc/v1
kind: Task
metadata:
  name: deploy
  labels: {team: core, tier: prod}
spec:
  title: Deploy the site
  prompt: Ship it
  agent: deployer
  requires: [deploy]
  depends_on: [build, test]
  inputs: {env: prod, replicas: 3}
  priority: 5
  risk: HIGH
  approval: before
  retry: {max_attempts: 2, initial_interval: 30s}
  timeout: 30m
  budget: {per_run_usd: 1.5}
"""

# The same resource, written differently.
SAME_TASK = {
    "keys-reordered-and-flow-style": """\
kind: Task
spec: {budget: {per_run_usd: 1.5}, timeout: 30m, retry: {initial_interval: 30s, max_attempts: 2},
  approval: before, risk: HIGH, priority: 5, inputs: {replicas: 3, env: prod},
  depends_on: [build, test], requires: [deploy], agent: deployer, prompt: Ship it,
  title: Deploy the site}
metadata: {labels: {tier: prod, team: core}, name: deploy}
apiVersion: mc/v1
""",
    "quotes-comments-and-block-lists": """\
# the production deploy
apiVersion: "mc/v1"
kind: 'Task'
metadata:
  name: "deploy"   # DNS-safe
  labels:
    tier: prod
    team: "core"
spec:
  title: "Deploy the site"
  prompt: >-
    Ship it
  agent: deployer
  requires:
    - deploy
  depends_on:
    - build
    - test
  inputs:
    replicas: 3
    env: prod
  priority: 5
  risk: HIGH
  approval: before
  retry:
    max_attempts: 2
    initial_interval: 30s
  timeout: 30m
  budget:
    per_run_usd: '1.50'
""",
    "defaults-spelled-out": TASK.replace(
        "  retry: {max_attempts: 2, initial_interval: 30s}\n",
        "  retry: {max_attempts: 2, initial_interval: 30s, backoff: 2.0, max_interval: 5m,"
        " jitter: 0.1, non_retryable_exit_codes: []}\n",
    ).replace(
        "  budget: {per_run_usd: 1.5}\n", "  budget: {per_run_usd: 1.500, estimated_usd: null}\n"
    ),
    "after-empty-documents-in-another-file": "---\n---\n" + TASK,
}

# One change each; every one must move the digest.
CHANGED_TASK = {
    "title": ("title: Deploy the site", "title: Deploy the site!"),
    "prompt": ("prompt: Ship it", "prompt: Ship it now"),
    "agent": ("agent: deployer", "agent: deployer2"),
    "requires": ("requires: [deploy]", "requires: [deploy, prod]"),
    "depends-on-order": ("depends_on: [build, test]", "depends_on: [test, build]"),
    "input-value": ("env: prod", "env: staging"),
    "input-type": ("replicas: 3", "replicas: '3'"),
    "priority": ("priority: 5", "priority: 6"),
    "risk": ("risk: HIGH", "risk: RED"),
    "approval": ("approval: before", "approval: after"),
    "retry": ("max_attempts: 2", "max_attempts: 3"),
    "timeout": ("timeout: 30m", "timeout: 31m"),
    "money": ("per_run_usd: 1.5", "per_run_usd: 1.51"),
    "name": ("name: deploy", "name: deploy-2"),
    "label-value": ("team: core", "team: edge"),
    "label-added": ("tier: prod}", "tier: prod, on-call: ann}"),
    "label-removed": ("{team: core, tier: prod}", "{team: core}"),
}


def digest(text: str) -> str:
    docs = parse_ok("tasks/deploy.yaml", text)
    assert [d.key for d in docs] in (["Task/deploy"], ["Task/deploy-2"])
    return docs[0].digest


@pytest.mark.parametrize("text", SAME_TASK.values(), ids=SAME_TASK.keys())
def test_formatting_does_not_change_the_digest(text: str) -> None:
    assert digest(text) == digest(TASK)


@pytest.mark.parametrize(("old", "new"), CHANGED_TASK.values(), ids=CHANGED_TASK.keys())
def test_any_change_changes_the_digest(old: str, new: str) -> None:
    assert old in TASK
    assert digest(TASK.replace(old, new, 1)) != digest(TASK)


def test_digest_does_not_depend_on_file_or_position() -> None:
    (here,) = parse_ok("tasks/deploy.yaml", TASK)
    there = parse_ok(
        "tasks/all.yaml", "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: m}\n---\n" + TASK
    )
    assert (there[1].path, there[1].index) == ("tasks/all.yaml", 1)
    assert there[1].digest == here.digest


def test_digest_is_sha256_of_the_canonical_resource() -> None:
    (parsed,) = parse_ok("tasks/deploy.yaml", TASK)
    assert parsed.digest == digest_of(parsed.kind, parsed.name, parsed.labels, parsed.spec)
    assert parsed.digest.startswith("sha256:") and len(parsed.digest) == len("sha256:") + 64
    assert digest_of("Task", "deploy", {}, {}) != digest_of("Agent", "deploy", {}, {})
    assert digest_of("Task", "a", {"x": "1"}, {}) != digest_of("Task", "a", {}, {"x": "1"})


def test_equal_money_amounts_digest_alike() -> None:
    amounts = ["5", "5.0", "'5.00'", "5.000000"]
    agents = [
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: a}\n"
        f"spec: {{command: [x], budget: {{daily_usd: {amount}}}}}\n"
        for amount in amounts
    ]
    digests = {parse_ok("a.yaml", text)[0].digest for text in agents}
    specs = {parse_ok("a.yaml", text)[0].spec["budget"]["daily_usd"] for text in agents}
    assert len(digests) == 1
    assert specs == {"5"}
