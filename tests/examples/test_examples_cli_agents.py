"""examples/agents/claude-code.yaml and codex.yaml through `mc apply`, with stand-in CLIs.

The stand-ins are scripts named `claude` and `codex`, first (and, besides git and python3,
only) on PATH. They check their arguments and print what the real tools print: Claude
Code's `--output-format json` result, and Codex's `exec --json` JSONL events. Everything else
(the wrappers, mc, the protocols, the state) is real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from examples_harness import (
    AGENTS,
    MISSION_YAML,
    make_repo,
    mc,
    restricted_path,
    runs_of,
    task_yaml,
    tasks,
)
from helpers.agents import interpreter_mounts, ro, rw

CLAUDE = """\
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(LOG, "a") as log:
    log.write(json.dumps({"args": args, "cwd": os.getcwd()}) + "\\n")
assert args[0] == "-p" and args[2:4] == ["--output-format", "json"], args
prompt = args[1]
usage = {"input_tokens": 1200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
         "output_tokens": 340, "server_tool_use": {"web_search_requests": 0},
         "service_tier": "standard"}
result = {"type": "result", "subtype": "success", "is_error": False, "duration_ms": 2345,
          "duration_api_ms": 2101, "num_turns": 3, "session_id": "4f1c0c2e-0000-4000-8000-1",
          "total_cost_usd": 0.01, "usage": usage}
if "simulate an API error" in prompt:
    result.update(is_error=True, total_cost_usd=0,
                  result='API Error: 529 {"type":"error","error":{"type":"overloaded_error"}}')
    print(json.dumps(result))
    sys.exit(1)
if prompt.startswith("Read task.json"):
    task = json.loads(Path("task.json").read_text())
    result["result"] = "Read the task titled " + task["title"]
else:
    Path("out/summary.md").write_text("# Summary\\n\\nPlans are reviewed first.\\n")
    result["result"] = "Summary written to out/summary.md"
print(json.dumps(result))
"""

CODEX = """\
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
prompt = sys.stdin.read()
with open(LOG, "a") as log:
    log.write(json.dumps({"args": args, "prompt": prompt, "cwd": os.getcwd()}) + "\\n")
assert args[:3] == ["exec", "--json", "--skip-git-repo-check"] and args[-1] == "-", args

def emit(event):
    print(json.dumps(event), flush=True)

emit({"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"})
emit({"type": "turn.started"})
if "simulate a failed turn" in prompt:
    emit({"type": "error", "message": "stream disconnected before completion"})
    emit({"type": "turn.failed", "error": {"message": "stream disconnected before completion"}})
    sys.exit(1)
emit({"type": "item.completed",
      "item": {"id": "item_0", "type": "reasoning", "text": "**Listing the files**"}})
emit({"type": "item.started", "item": {"id": "item_1", "type": "command_execution",
      "command": "bash -lc ls", "aggregated_output": "", "exit_code": None,
      "status": "in_progress"}})
emit({"type": "item.completed", "item": {"id": "item_1", "type": "command_execution",
      "command": "bash -lc ls", "aggregated_output": "out\\ntask.json\\n", "exit_code": 0,
      "status": "completed"}})
Path("out/CHANGES.md").write_text("- added a login page\\n")
emit({"type": "item.completed", "item": {"id": "item_2", "type": "file_change",
      "changes": [{"path": "out/CHANGES.md", "kind": "add"}], "status": "completed"}})
emit({"type": "item.completed",
      "item": {"id": "item_3", "type": "agent_message", "text": "Added the login page."}})
emit({"type": "turn.completed",
      "usage": {"input_tokens": 2400, "cached_input_tokens": 1024, "output_tokens": 310}})
"""


def stand_in(source: str, log: Path) -> str:
    return f"LOG = {str(log)!r}\n{source}"


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def cli_mission(root: Path, agent_files: list[str], task_files: dict[str, str]) -> Path:
    """The example agents as shipped, each also shown the test's bin dir (the stand-ins and
    the python3 they run with) and the stand-ins' log dir in its sandbox: the agents' PATH is
    that bin dir alone."""
    files: dict[str, str | Path] = {"mission.yaml": MISSION_YAML}
    for name in agent_files:
        source = AGENTS / name
        files[f"agents/{name}"] = (
            with_mounts(source, root.parent / "bin") if name.endswith(".yaml") else source
        )
    files |= {f"tasks/{name}.yaml": text for name, text in task_files.items()}
    return make_repo(files, root)


# The example agents take their keys by reference (the sandbox shows no login under $HOME).
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-test-0123", "CODEX_API_KEY": "sk-codex-test-0123"}


def with_mounts(agent_yaml: Path, bin_dir: Path) -> str:
    """The agent documents of `agent_yaml` with read-only mounts of `bin_dir` and of this
    interpreter, and the stand-ins' call logs writable, added to each spec (no other change)."""
    docs = list(yaml.safe_load_all(agent_yaml.read_text()))
    for doc in docs:
        doc["spec"]["mounts"] = [*interpreter_mounts(), ro(bin_dir), rw(logs_dir(bin_dir))]
    return yaml.safe_dump_all(docs, sort_keys=False)


def logs_dir(bin_dir: Path) -> Path:
    """Where the stand-ins log their calls (beside the bin dir; made here)."""
    logs = bin_dir.parent / "logs"
    logs.mkdir(exist_ok=True)
    return logs


def env_with_path(path: str) -> dict[str, str]:
    return {**os.environ, **KEYS, "PATH": path}


def test_claude_code_agents_through_mc(tmp_path: Path) -> None:
    log = logs_dir(tmp_path / "bin") / "claude-calls.jsonl"
    path = restricted_path(tmp_path / "bin", {"claude": stand_in(CLAUDE, log)})
    tasks_yaml = {
        "summarize": task_yaml("summarize", "claude-code", "Summarize why plans come first."),
        "direct": task_yaml("direct", "claude-code-direct", "Say what the task is."),
        "overloaded": task_yaml("overloaded", "claude-code", "Please simulate an API error."),
    }
    root = cli_mission(tmp_path / "mission", ["claude-code.yaml", "claude_code.py"], tasks_yaml)
    mc("apply", "--auto-approve", cwd=root, env=env_with_path(path))
    found = tasks(root)

    assert found["summarize"].state == "DONE"
    assert found["summarize"].output == "Summary written to out/summary.md"
    run = runs_of(root, "summarize")[0]
    assert (run["status"], float(run["cost_usd"]), run["tokens"]) == ("done", 0.01, 1540)
    drops = json.loads(mc("drops", "summarize", "--json", cwd=root))
    assert [d["path"] for d in drops] == ["summary.md"]

    assert found["direct"].state == "DONE"
    assert found["direct"].output == "Read the task titled direct"

    assert found["overloaded"].state == "FAILED"  # one attempt allowed; is_error is a retry
    run = runs_of(root, "overloaded")[0]
    assert run["status"] == "retry"
    assert run["error"].startswith("claude-code reported an error: API Error: 529")

    by_task = {Path(c["cwd"]).parent.name: c for c in calls(log)}
    wrapper = by_task["summarize"]["args"]
    assert "# Task: summarize" in wrapper[1] and "Summarize why plans come first." in wrapper[1]
    assert wrapper[4:] == ["--max-turns", "20", "--permission-mode", "acceptEdits"]
    assert by_task["direct"]["args"][1].startswith("Read task.json in the current directory")


def test_codex_agent_through_mc(tmp_path: Path) -> None:
    log = logs_dir(tmp_path / "bin") / "codex-calls.jsonl"
    path = restricted_path(tmp_path / "bin", {"codex": stand_in(CODEX, log)})
    tasks_yaml = {
        "login-page": task_yaml("login-page", "codex", "Add a login page."),
        "flaky": task_yaml("flaky", "codex", "Please simulate a failed turn."),
    }
    root = cli_mission(tmp_path / "mission", ["codex.yaml", "codex.py"], tasks_yaml)
    mc("apply", "--auto-approve", cwd=root, env=env_with_path(path))
    found = tasks(root)

    assert found["login-page"].state == "DONE", found["login-page"].reason
    assert found["login-page"].output == "Added the login page."
    assert found["login-page"].outputs == {"thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"}
    run = runs_of(root, "login-page")[0]
    assert run["tokens"] == 2400 + 310
    assert float(run["cost_usd"]) == 0.0061  # 2400 at $1.25 and 310 at $10 per million
    drops = json.loads(mc("drops", "login-page", "--json", cwd=root))
    assert [d["path"] for d in drops] == ["CHANGES.md"]
    transcript = mc("logs", "login-page", "--stream", "stdout", cwd=root)
    assert '"type": "agent_message"' in transcript  # the events are kept in the run's log

    assert found["flaky"].state == "FAILED"
    run = runs_of(root, "flaky")[0]
    assert run["status"] == "retry"
    assert run["error"] == "codex exited 1: stream disconnected before completion"

    call = next(c for c in calls(log) if "Add a login page." in c["prompt"])
    assert call["args"] == [
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--sandbox",
        "workspace-write",
        "-",
    ]
    assert "# Task: login-page" in call["prompt"]


def test_missing_cli_binaries_fail_with_a_clear_error(tmp_path: Path) -> None:
    path = restricted_path(tmp_path / "bin", {})  # neither claude nor codex
    tasks_yaml = {
        "ask-claude": task_yaml("ask-claude", "claude-code", "Anything."),
        "ask-codex": task_yaml("ask-codex", "codex", "Anything."),
    }
    agents = ["claude-code.yaml", "claude_code.py", "codex.yaml", "codex.py"]
    root = cli_mission(tmp_path / "mission", agents, tasks_yaml)
    mc("apply", "--auto-approve", cwd=root, env=env_with_path(path))

    claude_run = runs_of(root, "ask-claude")[0]
    assert claude_run["exit_code"] == 127
    assert "the `claude` CLI is not on PATH" in claude_run["error"]
    codex_run = runs_of(root, "ask-codex")[0]
    assert codex_run["status"] == "failed"
    assert "the `codex` CLI is not on PATH" in codex_run["error"]
    assert {t.state for t in tasks(root).values()} == {"FAILED"}
