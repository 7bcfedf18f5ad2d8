"""Bad workflows and runs are refused before anything runs, each problem with its file and line.

Workflow files are written by hand here so the expected line is visible next to the case;
`line_of` finds it in the text, so the tests do not hard-code YAML layout.
"""

from __future__ import annotations

import hashlib

import pytest
from wf_harness import WfRepo, doc, step

from reconciler.repo.source import MissionRepo
from specs.errors import SpecError, SpecProblem

HEADER = """\
apiVersion: mc/v1
kind: Workflow
metadata: {name: dev}
spec:
  inputs:
    goal: {required: true}
  steps:
"""


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line containing `needle`."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, f"{needle!r} on lines {found}"
    return found[0]


def problems(repo: WfRepo) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        MissionRepo(repo.root).desired("HEAD")
    return caught.value.problems


# (case, steps as YAML, the start of the message, hint or None, a text on the offending line)
BAD_WORKFLOWS = [
    (
        "step cycle",
        """\
    - {id: plan, agent: worker, prompt: go}
    - {id: a, agent: worker, depends_on: [plan, b]}
    - {id: b, agent: worker, depends_on: [a]}
""",
        "step cycle: a → b → a",
        None,
        "id: a,",
    ),
    (
        "unknown step in depends_on",
        """\
    - {id: plan, agent: worker}
    - id: implement
      agent: worker
      depends_on: [plna]
""",
        "depends on unknown step 'plna'",
        "did you mean 'plan'?",
        "depends_on: [plna]",
    ),
    (
        "an earlier step uses a later step's output",
        """\
    - id: implement
      agent: worker
      prompt: "Fix what {{ steps.verify.output }} says"
    - {id: verify, agent: verifier, depends_on: [implement], verifies: implement}
""",
        "template refers to step 'verify', which does not run before this one",
        None,
        "steps.verify.output",
    ),
    (
        "a parallel step's output (not a dependency either)",
        """\
    - {id: a, agent: worker}
    - {id: b, agent: worker}
    - {id: c, agent: worker, depends_on: [a], prompt: "{{ steps.b.output }}"}
""",
        "template refers to step 'b', which does not run before this one",
        None,
        "steps.b.output",
    ),
    (
        "template syntax error",
        """\
    - id: plan
      agent: worker
      prompt: "Plan {{ inputs.goal "
""",
        "template syntax error: unexpected end of template",
        None,
        "prompt:",
    ),
    (
        "syntax error in a block, reported with its template line",
        """\
    - id: plan
      agent: worker
      prompt: |
        first line
        {% if %}ok{% endif %}
""",
        "template syntax error: Expected an expression",
        None,
        "prompt: |",
    ),
    (
        "syntax error in `when`",
        """\
    - {id: plan, agent: worker, when: "inputs.goal =="}
""",
        "template syntax error",
        None,
        "when:",
    ),
    (
        "undefined template variable",
        """\
    - {id: plan, agent: worker, prompt: "Plan {{ foo }}"}
""",
        "undefined template variable 'foo' (available: inputs, steps, run, feedback)",
        None,
        "{{ foo }}",
    ),
    (
        "undefined input",
        """\
    - {id: plan, agent: worker, prompt: "Plan {{ inputs.nope }}"}
""",
        "undefined input 'nope' in template (declare it under spec.inputs)",
        None,
        "inputs.nope",
    ),
    (
        "undefined input in `when`",
        """\
    - {id: plan, agent: worker, when: "inputs['nope'] == 1"}
""",
        "undefined input 'nope' in template",
        None,
        "when:",
    ),
    (
        "template refers to an unknown step",
        """\
    - {id: plan, agent: worker, prompt: "{{ steps.ghost.output }}"}
""",
        "template refers to unknown step 'ghost'",
        None,
        "steps.ghost",
    ),
    (
        "verifies a step it does not depend on",
        """\
    - {id: implement, agent: worker}
    - {id: docs, agent: worker}
    - {id: verify, agent: verifier, depends_on: [docs], verifies: implement}
""",
        "step 'verify' verifies 'implement' but does not depend on it",
        "add it to depends_on",
        "id: verify",
    ),
    (
        "verifies an unknown step",
        """\
    - {id: implement, agent: worker}
    - {id: verify, agent: verifier, depends_on: [implement], verifies: implemnt}
""",
        "verifies unknown step 'implemnt'",
        "did you mean 'implement'?",
        "id: verify",
    ),
    (
        "duplicate step id",
        """\
    - {id: plan, agent: worker}
    - {id: plan, agent: verifier}
""",
        "duplicate step id 'plan'",
        None,
        "agent: verifier",
    ),
    (
        "a step's agent does not exist",
        """\
    - {id: plan, agent: planner}
""",
        "unknown agent 'planner'",
        None,
        "agent: planner",
    ),
]


@pytest.mark.parametrize(
    ("steps", "message", "hint", "needle"),
    [case[1:] for case in BAD_WORKFLOWS],
    ids=[case[0] for case in BAD_WORKFLOWS],
)
def test_a_bad_workflow_is_one_problem_with_file_and_line(
    repo: WfRepo, steps: str, message: str, hint: str | None, needle: str
) -> None:
    text = HEADER + steps
    repo.write("workflows/dev.yaml", text)
    repo.commit()

    [problem] = problems(repo)

    assert problem.path == "workflows/dev.yaml"
    assert problem.message.startswith(message), problem.message
    assert problem.hint == hint
    assert problem.line == line_of(text, needle), str(problem)


def test_a_syntax_error_deep_in_a_block_prompt_names_the_template_line(repo: WfRepo) -> None:
    repo.write(
        "workflows/dev.yaml",
        HEADER + "    - id: plan\n      agent: worker\n      prompt: |\n        a\n        b\n"
        "        {{ inputs.goal }\n",
    )
    repo.commit()

    [problem] = problems(repo)

    assert "template syntax error" in problem.message
    assert problem.message.endswith("(template line 3)"), problem.message


def test_every_bad_run_is_reported_with_its_file_and_line(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [step("plan", prompt="{{ inputs.goal }} {{ inputs.size }}")],
        inputs={"goal": {"required": True}, "size": {"default": "small", "enum": ["small", "big"]}},
    )
    files = {
        "missing": repo.run("missing", "dev", size="big"),
        "enum": repo.run("enum", "dev", goal="x", size="huge"),
        "unknown-input": repo.run("unknown-input", "dev", goal="x", colour="red"),
        "unknown-workflow": repo.run("unknown-workflow", "deev", goal="x"),
    }
    repo.commit()

    found = {p.path: p for p in problems(repo)}

    assert set(found) == set(files.values())

    def check(name: str, needle: str, message: str, hint: str | None = None) -> None:
        p = found[files[name]]
        text = (repo.root / files[name]).read_text()
        assert (p.line, p.message, p.hint) == (line_of(text, needle), message, hint)

    check("missing", "inputs:", "missing required input 'goal'")
    check("enum", "size: huge", "input 'size' is 'huge'; expected one of small, big")
    check("unknown-input", "colour: red", "unknown input of workflow 'dev': 'colour'")
    check("unknown-workflow", "workflow: deev", "unknown workflow 'deev'", "did you mean 'dev'?")


def test_a_required_input_with_a_default_may_be_left_out(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [step("plan", prompt="{{ inputs.goal }}")],
        inputs={"goal": {"required": True, "default": "anything"}},
    )
    repo.run("r1", "dev")
    repo.commit()

    desired = MissionRepo(repo.root).desired("HEAD")

    assert desired.get("WorkflowRun", "r1") is not None


def test_mc_validate_prints_each_problem_as_file_line_col(repo: WfRepo) -> None:
    text = HEADER + (
        "    - {id: plan, agent: worker, prompt: '{{ inputs.goal }}'}\n"
        "    - {id: implement, agent: worker, depends_on: [plan, ghost]}\n"
    )
    repo.write("workflows/dev.yaml", text)
    repo.commit()

    proc = repo.mc("validate")

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    line = line_of(text, "ghost")
    col = text.splitlines()[line - 1].index("ghost") + 1
    assert proc.stderr.strip() == (
        f"error: workflows/dev.yaml:{line}:{col}: depends on unknown step 'ghost'"
    )


def test_a_failing_apply_leaves_the_state_byte_identical(repo: WfRepo) -> None:
    repo.workflow("dev", [step("plan", prompt="{{ inputs.goal }}")], inputs={"goal": {}})
    repo.commit()
    assert repo.apply().result is not None
    before = hashlib.sha256(repo.state_file.read_bytes()).hexdigest()
    repo.write(
        "workflows/dev.yaml",
        doc(
            "Workflow",
            "dev",
            {"steps": [step("plan", prompt="{{ inputs.goal }}", depends_on=["plan"])]},
        ),
    )
    repo.run("r1", "dev", goal="x")
    repo.commit("a cycle and a run of it")

    proc = repo.mc("apply", "--auto-approve")

    assert proc.returncode == 1, proc.stdout
    assert "workflows/dev.yaml:" in proc.stderr and "step cycle: plan → plan" in proc.stderr
    assert hashlib.sha256(repo.state_file.read_bytes()).hexdigest() == before

    repo.workflow("dev", [step("plan", prompt="{{ inputs.goal }}")], inputs={"goal": {}})
    repo.run("r1", "dev", goal="x", colour="red")  # fails later: across documents
    repo.commit("no cycle; an unknown input")
    proc = repo.mc("apply", "--auto-approve")

    assert proc.returncode == 1, proc.stdout
    assert "runs/r1.yaml:" in proc.stderr and "unknown input" in proc.stderr
    assert hashlib.sha256(repo.state_file.read_bytes()).hexdigest() == before
    with repo.state() as state:
        assert state.reader.workflow_runs() == []
