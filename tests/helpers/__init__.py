"""Shared test helpers, imported by every test folder's harness and by tests directly.

Which module answers what:
- run git with an isolated identity and config? → `helpers.git`
- write a mission document as YAML (Mission, Agent, Task, …)? → `helpers.yaml_docs`
- find and run the real `mc` CLI? → `helpers.mc`
- the Python snippet an agent program starts with, a one-line agent, or the sandbox mounts a
  test agent needs (this interpreter, a scratch dir)? → `helpers.agents`
- wait, bounded, for something to become true? → `helpers.waiting`
- a mission repo on disk: write files, commit, read its state? → `helpers.mission_repo`
"""
