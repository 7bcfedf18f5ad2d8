"""`mc init`: write a small, working mission repo and commit it; called by cli/main.py."""

from __future__ import annotations

from pathlib import Path

from reconciler.repo.git import GitError, run_git
from specs.errors import MCError

MISSION = """\
# The mission: who may approve risky changes, policy, budgets and mode.
# Schema: `mc schema`; reference: README.md ("The mission repo").
apiVersion: mc/v1
kind: Mission
metadata:
  name: my-mission
spec:
  description: A starter mission created by `mc init`
  mode: normal            # normal | paused | draining
  approvers: []           # add people with ssh_keys / gpg_keys / telegram_ids
  budget:
    daily_usd: 5
  policy:
    approval_ttl: 24h
    rules: []
"""

AGENT = """\
apiVersion: mc/v1
kind: Agent
metadata:
  name: summarizer
spec:
  role: Summarizes text files into a short report
  capabilities: [summarize]
  command: [python3, "{repo}/agents/summarize.py"]   # {repo}: the checkout
  protocol: files         # reads task.json, writes result.json and out/
  concurrency: 2
  timeout: 2m
  budget:
    daily_usd: 1
"""

TASK = """\
apiVersion: mc/v1
kind: Task
metadata:
  name: summarize-readme
spec:
  title: Summarize the README
  prompt: Count the words and list the headings of README.md
  requires: [summarize]
  inputs:
    file: README.md
"""

AGENT_PROGRAM = '''\
"""An offline example agent: reads task.json, summarizes a file, writes result.json."""

import json
import os
from pathlib import Path

task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
repo = Path(os.environ.get("MC_REPO", "."))
name = task.get("inputs", {}).get("file", "README.md")
text = (repo / name).read_text()
headings = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
summary = f"{name}: {len(text.split())} words; headings: {', '.join(headings) or 'none'}"
out = Path(os.environ["MC_OUT_DIR"])
(out / "summary.md").write_text("# Summary\\n\\n" + summary + "\\n")
Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps({"status": "done", "output": summary}))
'''

README = """\
# My mission

A mission repo for Mission Control (`mc`). Edit the YAML, commit, then:

    mc plan     # what would change
    mc apply    # make it so
"""


def scaffold(directory: Path) -> str:
    """Create and commit the starter repo; refuse to touch a directory that has files."""
    if directory.exists() and any(directory.iterdir()):
        raise MCError(f"{directory}: exists and is not empty; choose a new directory")
    files = {
        "mission.yaml": MISSION,
        "agents/summarizer.yaml": AGENT,
        "agents/summarize.py": AGENT_PROGRAM,
        "tasks/summarize-readme.yaml": TASK,
        "README.md": README,
    }
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git(directory, "init", "-q")
    _git(directory, "add", "-A")
    env_author = ["-c", "user.name=mc init", "-c", "user.email=mc@localhost"]
    has_identity = _git(directory, "config", "user.email", check=False)
    _git(
        directory,
        *([] if has_identity else env_author),
        "commit",
        "-q",
        "-m",
        "Mission scaffold (mc init)",
    )
    head = _git(directory, "rev-parse", "HEAD")
    assert head is not None
    return head


def _git(cwd: Path, *args: str, check: bool = True) -> str | None:
    """git through repo/git.py: no hook, template-set fsmonitor or filter of any config runs."""
    try:
        return run_git(cwd, *args, check=check)
    except GitError as exc:
        raise MCError(f"git {args[0]} in {cwd}: {exc}") from None
