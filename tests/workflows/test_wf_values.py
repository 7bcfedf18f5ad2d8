"""Issue 14's measured cases 2, 4 and 5 through the real `mc`: an unbounded duration is a spec
error at its line (nothing crashes), values reach agents as written (YAML 1.2 core), and a
prompt never says `None` (a skipped step's output is undefined; validate warns first).

Files are written as YAML text, not dumped from Python values, because the point is what a
person writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wf_harness import PRELUDE, WfRepo

pytestmark = pytest.mark.timeout(120)

RETRY_ONCE = "retry: {max_attempts: 1}"


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line containing `needle`."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, f"{needle!r} on lines {found}"
    return found[0]


def place(text: str, needle: str) -> str:
    """`line:column` (1-based) where `needle` starts on the only line containing it."""
    line = line_of(text, needle)
    return f"{line}:{text.splitlines()[line - 1].index(needle) + 1}"


def test_an_approval_ttl_of_800000d_is_a_spec_error_not_a_crash(repo: WfRepo) -> None:
    text = (
        "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: workflow-tests}\n"
        "spec:\n  policy:\n    approval_ttl: 800000d\n"
    )
    repo.write("mission.yaml", text)
    repo.commit()
    expected = (
        "error: mission.yaml:6:5: spec.policy.approval_ttl: duration 800000d is longer than"
        " the maximum 366d"
    )

    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        proc = repo.mc(*command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert proc.stderr.splitlines() == [expected], command
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr

    repo.replace("mission.yaml", "800000d", "366d")
    repo.commit()
    assert repo.mc("apply", "--auto-approve").returncode == 0  # the maximum itself is fine


DEPLOY = f"""\
apiVersion: mc/v1
kind: Workflow
metadata: {{name: deploy}}
spec:
  inputs:
    region: {{required: true, enum: [SE, NO, DK]}}
  steps:
    - id: go
      agent: worker
      {RETRY_ONCE}
      prompt: "Deploy to {{{{ inputs.region }}}}"
"""


def run_file(name: str, region: str) -> str:
    return (
        f"apiVersion: mc/v1\nkind: WorkflowRun\nmetadata: {{name: {name}}}\n"
        f"spec:\n  workflow: deploy\n  inputs:\n    region: {region}\n"
    )


def test_region_no_reaches_the_prompt_as_written(repo: WfRepo) -> None:
    repo.write("workflows/deploy.yaml", DEPLOY)
    repo.write("runs/nordic.yaml", run_file("nordic", "NO"))
    repo.write("runs/quoted.yaml", run_file("quoted", '"NO"'))
    repo.commit()

    checked = repo.mc("validate")

    assert checked.returncode == 0, checked.stderr
    hint = '(hint: quote it ("NO") so that every reader agrees)'
    says = "`NO` is text here (YAML 1.2), but YAML 1.1 tools read false"
    enum_at = place(DEPLOY, "NO,")
    assert checked.stderr.splitlines() == [
        f"warning: runs/nordic.yaml:7:13: {says} {hint}",
        f"warning: workflows/deploy.yaml:{enum_at}: {says} {hint}",
    ]
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert repo.task_json("nordic", "go")["prompt"] == "Deploy to NO"
    assert repo.task_json("quoted", "go")["prompt"] == "Deploy to NO"
    assert repo.run_row("nordic").inputs == {"region": "NO"}


def test_an_input_outside_the_enum_is_quoted_as_written(repo: WfRepo) -> None:
    repo.write("workflows/deploy.yaml", DEPLOY)
    repo.write("runs/wrong.yaml", run_file("wrong", "no"))
    repo.commit()

    proc = repo.mc("validate")

    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: runs/wrong.yaml:7:5: input 'region' is 'no'; expected one of SE, NO, DK"
    ]


TASK = f"""\
apiVersion: mc/v1
kind: Task
metadata: {{name: flags}}
spec:
  title: Flags as written
  agent: worker
  {RETRY_ONCE}
  inputs: {{feature: on, version: 1.10, quoted: "1.10", mode: 0755, at: 12:30:00}}
"""


def test_task_inputs_keep_their_yaml_1_2_meaning_and_validate_says_where_they_lose_form(
    repo: WfRepo,
) -> None:
    repo.write("tasks/flags.yaml", TASK)
    repo.commit()

    checked = repo.mc("validate")

    assert checked.returncode == 0, checked.stderr
    here, lost = "is text here (YAML 1.2), but YAML 1.1 tools read", "is read as the number"
    agree, as_written = "so that every reader agrees)", "to keep it as written)"
    assert checked.stderr.splitlines() == [
        f"warning: tasks/flags.yaml:{place(TASK, 'on,')}: `on` {here} true"
        f' (hint: quote it ("on") {agree}',
        f"warning: tasks/flags.yaml:{place(TASK, '1.10,')}: `1.10` {lost} 1.1, not as written"
        f' (hint: quote it ("1.10") {as_written}',
        f"warning: tasks/flags.yaml:{place(TASK, '0755')}: `0755` {lost} 755, not as written"
        f' (hint: quote it ("0755") {as_written}',
        f"warning: tasks/flags.yaml:{place(TASK, '12:30:00')}: `12:30:00` {here} 45000"
        f' (hint: quote it ("12:30:00") {agree}',
    ]
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    [run] = repo.runs("flags")
    assert run.workspace is not None
    task_json = json.loads(Path(run.workspace, "task.json").read_text())
    assert task_json["inputs"] == {
        "feature": "on",
        "version": 1.1,
        "quoted": "1.10",
        "mode": 755,
        "at": "12:30:00",
    }


SKIPPING = f"""\
apiVersion: mc/v1
kind: Workflow
metadata: {{name: skipping}}
spec:
  inputs:
    size: {{default: small, enum: [small, big]}}
  steps:
    - {{id: a, agent: worker, {RETRY_ONCE}}}
    - id: b
      agent: worker
      depends_on: [a]
      when: "inputs.size == 'big'"
      {RETRY_ONCE}
    - id: c
      agent: worker
      depends_on: [b]
      {RETRY_ONCE}
      prompt: "after b: {{{{ steps.b.output }}}}"
    - id: d
      agent: worker
      depends_on: [b]
      {RETRY_ONCE}
      prompt: "{{% if steps.b is defined %}}{{{{ steps.b.output }}}}{{% else %}}no b{{% endif %}}"
"""


C_PROMPT = 'prompt: "after b'


def test_a_skipped_steps_output_fails_the_reader_naming_it_and_validate_warns(
    repo: WfRepo,
) -> None:
    repo.write("workflows/skipping.yaml", SKIPPING)
    repo.write(
        "runs/small.yaml",
        "apiVersion: mc/v1\nkind: WorkflowRun\nmetadata: {name: small}\n"
        "spec: {workflow: skipping}\n",
    )
    repo.commit()

    checked = repo.mc("validate")

    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines() == [
        f"warning: workflows/skipping.yaml:{place(SKIPPING, C_PROMPT)}:"
        " step 'c' reads steps.b, but step 'b' may be skipped (it has a `when`): its output is"
        " then undefined and this step fails"
        " (hint: guard it: {% if steps.b is defined %}…{% endif %})"
    ]
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert repo.steps("small") == {"a": "DONE", "b": "DONE", "c": "FAILED", "d": "DONE"}
    assert repo.step_row("small", "c").reason == (
        "failed: template variable undefined at run time: steps.b is undefined:"
        " step 'b' was skipped (its `when: inputs.size == 'big'` was false)"
    )
    assert repo.runs_of("small", "c") == []  # no agent was started with a broken prompt
    assert repo.task_json("small", "d")["prompt"] == "no b"


def test_a_null_output_fails_the_step_that_prints_it_naming_the_variable(repo: WfRepo) -> None:
    """A step that finished with no output: printing it is an error, not 'None'; `or ''`
    says that empty text is meant."""
    silent = repo.agent_program("silent", 'result(status="done")', PRELUDE)
    repo.agent(
        "silent", capabilities=["silent"], command=silent, env={"SCRATCH": str(repo.scratch)}
    )
    repo.write(
        "workflows/quiet.yaml",
        f"""\
apiVersion: mc/v1
kind: Workflow
metadata: {{name: quiet}}
spec:
  steps:
    - {{id: a, agent: silent, {RETRY_ONCE}}}
    - {{id: b, agent: worker, depends_on: [a], prompt: "got {{{{ steps.a.output }}}}"}}
    - id: c
      agent: worker
      depends_on: [a]
      {RETRY_ONCE}
      prompt: "got [{{{{ steps.a.output or '' }}}}] {{{{ steps.a.outputs }}}} {{{{ true }}}}"
""",
    )
    repo.write(
        "runs/hush.yaml",
        "apiVersion: mc/v1\nkind: WorkflowRun\nmetadata: {name: hush}\nspec: {workflow: quiet}\n",
    )
    repo.commit()

    applied = repo.mc("apply", "--auto-approve")

    assert applied.returncode == 0, applied.stderr
    assert repo.steps("hush") == {"a": "DONE", "b": "FAILED", "c": "DONE"}
    assert repo.step_row("hush", "b").reason == (
        "failed: template variable steps.a.output is null at run time (prompts never print"
        " null; write {{ steps.a.output or '' }} where empty text is meant)"
    )
    assert repo.task_json("hush", "c")["prompt"] == "got [] {} true"


def test_mc_run_reads_inputs_as_a_mission_file_would(repo: WfRepo) -> None:
    repo.write("workflows/deploy.yaml", DEPLOY)
    repo.commit()

    proc = repo.mc("run", "deploy", "-i", "region=NO", "--name", "oslo")

    assert proc.returncode == 0, proc.stderr
    assert "region: 'NO'" in repo.read("runs/oslo.yaml")  # quoted: YAML 1.1 tools agree
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert repo.task_json("oslo", "go")["prompt"] == "Deploy to NO"
    refused = repo.mc("run", "deploy", "-i", "region=[NO", "--name", "broken")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: -i 'region=[NO': not a YAML value (")
