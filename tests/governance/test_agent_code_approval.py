"""What an agent runs is in its digest (issue 13 item 3), through the real CLI: editing the
script an agent's command names is an update of the agent, HIGH by default; until an approver
signs it, the agent keeps running the code that was approved; once signed, the new code runs."""

from __future__ import annotations

from governance_harness import GovRepo, Signer, git

TARGET = "Agent/collector"
SCRIPT = "agents/collector.py"


def collector(repo: GovRepo, version: str) -> None:
    """agents/collector.py reporting `version`; the agent runs it as {repo}/agents/collector.py."""
    command = repo.agent_program(
        "collector", f'result(status="done", output="collector {version}")'
    )
    repo.agent("collector", command=command, capabilities=["collect"])


def run_task(repo: GovRepo, name: str) -> str:
    """Add a task for the collector, commit it (unsigned) and `mc apply` until it is done; its
    output."""
    repo.task(name, agent="collector")
    repo.commit(f"task {name}")
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    row = repo.task_row(name)
    assert row.state == "DONE", row
    return str(row.output)


def test_editing_an_agents_script_needs_approval_and_then_runs(
    repo: GovRepo, alice: Signer
) -> None:
    collector(repo, "v1")
    repo.commit("mission")
    first = repo.mc("apply", "--auto-approve", "--no-wait")
    assert first.returncode == 0, first.stderr
    approved_digest = repo.applied_digest(TARGET)

    collector(repo, "v2")  # only the script changes: the YAML is the same
    assert git(repo.root, "status", "--porcelain") == f"M {SCRIPT}"
    repo.commit("collector v2, unsigned")

    plan = repo.mc("plan")
    assert plan.returncode == 0, plan.stderr
    assert f"~ {TARGET}  HIGH (default: agent command/env)" in plan.stdout
    assert f"spec.code_blobs.{SCRIPT}:" in plan.stdout
    assert "0/1 approvals" in plan.stdout

    # the unapproved script is committed and the applied commit moves on: the agent still
    # runs the code it was approved with
    assert run_task(repo, "before") == "collector v1"
    assert repo.pending() == [TARGET]
    assert repo.applied_digest(TARGET) == approved_digest

    git(repo.root, "config", "gpg.format", "ssh")
    git(repo.root, "config", "user.signingkey", alice.signing_key)
    signed = repo.mc("approve", TARGET, "--reason", "read the new collector")
    assert signed.returncode == 0, signed.stdout + signed.stderr

    assert run_task(repo, "after") == "collector v2"
    assert repo.pending() == []
    assert repo.applied_digest(TARGET) == repo.digest(TARGET) != approved_digest
    updated = repo.events("resource.updated", TARGET)
    assert updated[-1].data["approved_by"] == ["alice"]


def test_a_declared_code_file_counts_like_the_script(repo: GovRepo) -> None:
    """A helper module the script imports, declared with `code:`: editing it is HIGH too."""
    repo.write("agents/helper.py", "GREETING = 'hi'\n")
    command = repo.agent_program("collector", 'result(status="done", output="ok")')
    repo.agent("collector", command=command, code=["agents/helper.py"])
    repo.commit("mission")
    assert repo.mc("apply", "--auto-approve", "--no-wait").returncode == 0

    repo.write("agents/helper.py", "GREETING = 'pwned'\n")
    repo.commit("helper edited, unsigned")

    action = repo.action(TARGET)
    assert (action.decision.risk, action.status) == ("HIGH", "needs_approval")
    assert [c.path for c in getattr(action.change, "changes", ())] == [
        "spec.code_blobs.agents/helper.py"
    ]


def test_a_script_behind_a_symbolic_link_counts_like_the_script(repo: GovRepo) -> None:
    """The command names {repo}/agents/run.py, a link to real/collector.py (outside every
    pattern): the link's blob is only the target's name, so without following it an unsigned
    edit of real/collector.py ran unapproved. The file behind the link is the agent's code."""
    command = repo.agent_program("collector", 'result(status="done", output="collector v1")')
    repo.write("real/collector.py", repo.read(SCRIPT))
    repo.remove(SCRIPT)
    (repo.root / "agents/run.py").symlink_to("../real/collector.py")
    repo.agent("collector", command=[command[0], "{repo}/agents/run.py"])
    repo.commit("mission")
    assert run_task(repo, "first") == "collector v1"
    approved_digest = repo.applied_digest(TARGET)

    repo.replace("real/collector.py", "collector v1", "collector v2")
    repo.commit("the code behind the link, unsigned")

    action = repo.action(TARGET)
    assert (action.decision.risk, action.status) == ("HIGH", "needs_approval")
    assert [c.path for c in getattr(action.change, "changes", ())] == [
        "spec.code_blobs.real/collector.py"
    ]
    assert run_task(repo, "second") == "collector v1"  # the approved tree still runs
    assert repo.applied_digest(TARGET) == approved_digest
