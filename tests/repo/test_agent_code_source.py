"""The git source gives each agent the blob ids of the files it runs: from the commit's tree,
or from the work tree hashed as `git add` would store it (so a preview and the commit agree)."""

from __future__ import annotations

import os

from helpers.starter import GitRepo, git, mc

from reconciler.repo.source import MissionRepo

AGENT = "Agent/summarizer"  # runs {repo}/agents/summarize.py (the `mc init` starter)
SCRIPT = "agents/summarize.py"


def code_of(repo: GitRepo, rev: str | None) -> dict[str, str]:
    doc = MissionRepo(repo.root).desired(rev).docs[AGENT]
    blobs: dict[str, str] = doc.spec["code_blobs"]
    return blobs


def digest_of(repo: GitRepo, rev: str | None) -> str:
    return MissionRepo(repo.root).desired(rev).docs[AGENT].digest


def test_the_script_a_command_names_is_in_the_digest(mission_repo: GitRepo) -> None:
    assert code_of(mission_repo, "HEAD") == {
        SCRIPT: git(mission_repo.root, "rev-parse", f"HEAD:{SCRIPT}")
    }
    before = digest_of(mission_repo, "HEAD")

    mission_repo.write("README.md", "# Other words\n")
    mission_repo.commit("docs")
    assert digest_of(mission_repo, "HEAD") == before  # a file the agent does not run

    mission_repo.write(SCRIPT, mission_repo.read(SCRIPT) + "print('changed')\n")
    mission_repo.commit("new agent code")
    assert digest_of(mission_repo, "HEAD") != before


def test_the_work_tree_is_hashed_as_git_would_store_it(mission_repo: GitRepo) -> None:
    mission_repo.replace(
        "agents/summarizer.yaml", "  protocol: files", '  code: ["agents/lib"]\n  protocol: files'
    )
    mission_repo.write("agents/lib/util.py", "X = 1\n")  # untracked: a commit would hold it
    mission_repo.write("agents/lib/cache.pyc", "junk")  # ignored: a commit would not
    mission_repo.write(".gitignore", "*.pyc\n")
    os.symlink("util.py", mission_repo.root / "agents/lib/alias.py")  # stored as its target
    mission_repo.write(SCRIPT, mission_repo.read(SCRIPT) + "# edited\n")

    preview = code_of(mission_repo, None)
    assert sorted(preview) == ["agents/lib/alias.py", "agents/lib/util.py", SCRIPT]
    assert preview[SCRIPT] == git(mission_repo.root, "hash-object", SCRIPT)
    assert preview["agents/lib/util.py"] == git(
        mission_repo.root, "hash-object", "agents/lib/util.py"
    )
    worktree_digest = digest_of(mission_repo, None)

    mission_repo.commit("as previewed")

    assert code_of(mission_repo, "HEAD") == preview
    assert digest_of(mission_repo, "HEAD") == worktree_digest  # plan --worktree == plan


def test_code_that_matches_no_file_fails_the_plan_at_its_line(mission_repo: GitRepo) -> None:
    mission_repo.replace(
        "agents/summarizer.yaml",
        "  protocol: files",
        '  code: ["agents/lib/*.py"]\n  protocol: files',
    )
    mission_repo.write("agents/lib/util.py", "X = 1\n")  # only in the work tree
    git(mission_repo.root, "add", "agents/summarizer.yaml")
    git(mission_repo.root, "commit", "-q", "-m", "code glob, file not committed")

    proc = mc("plan", cwd=mission_repo.root)

    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "agents/summarizer.yaml:9:10: agents/lib/*.py names no file in the mission repo" in out
    assert "Traceback" not in out
    assert mc("plan", "--worktree", cwd=mission_repo.root).returncode == 0  # the preview has it
