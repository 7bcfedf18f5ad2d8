"""Shared helpers for this mission's agents: the mc files protocol, working copies, tests, diffs.

Every agent here is a script run as `python3 {repo}/agents/<name>.py`, so this module sits on
its import path (`sys.path[0]` is the script's folder) and is imported as plain `devkit`.

The protocol (mc `files`): read $MC_TASK_JSON, leave content drops in $MC_OUT_DIR, write
$MC_RESULT_JSON. Steps of one run get different workspaces and each runs in its own sandbox
(the mission checkout is read-only), so the code being changed travels as content drops: a
step's working copy is `out/wc/`, restored from its upstream step's `wc/` drops, and whatever
it leaves there (changed or not) is the next step's copy. The app under `inputs.app` is only
ever read.
"""

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".git", ".mc"}

# Runs the suite in a child process and prints one JSON line: counts and failure messages.
TEST_RUNNER = """
import json, unittest
result = unittest.TestResult()
unittest.defaultTestLoader.discover("tests", top_level_dir=".").run(result)
def last_line(tb):
    return tb.strip().splitlines()[-1]
print(json.dumps({
    "run": result.testsRun,
    "failures": [[t.id(), last_line(tb)] for t, tb in result.failures + result.errors],
    "skipped": len(result.skipped),
}))
"""


# --- the mc files protocol ----------------------------------------------------------------


def load_task():
    return json.loads(Path(os.environ["MC_TASK_JSON"]).read_text(encoding="utf-8"))


def finish(status="done", output="", outputs=None, error=None, memory=None):
    """Write result.json (cost 0: nothing here calls a paid model) and echo the output."""
    result = {"status": status, "output": output, "outputs": outputs or {}, "cost_usd": 0}
    if error is not None:
        result["error"] = error
    if memory:
        result["memory"] = memory
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(output or error)


def drop(name, text):
    """Leave a content drop: mc keeps every file under out/ after the run."""
    Path(os.environ["MC_OUT_DIR"], name).write_text(text, encoding="utf-8")


def inputs(task):
    return task["workflow"]["inputs"]


def upstream_with(task, key):
    """The outputs of the first upstream step that produced `key`, or {}."""
    for name in sorted(task.get("upstream", {})):
        outputs = task["upstream"][name].get("outputs") or {}
        if key in outputs:
            return outputs
    return {}


def upstream_drop(task, path):
    """The stored file of an upstream content drop named `path`, or None."""
    for upstream in task.get("upstream", {}).values():
        for found in upstream.get("drops", []):
            if found["path"] == path:
                return Path(found["file"])
    return None


# --- the app and its working copy ---------------------------------------------------------


def app_dir(task):
    """The original app, read-only: `inputs.app` relative to the mission checkout."""
    return Path(task["repo"]) / inputs(task)["app"]


WORKING_COPY = "wc"  # drops under out/wc/ carry a run's working copy from step to step


def working_copy(task):
    """This step's copy of the app: `out/wc/`, restored on first use from the `wc/` drops of
    the first upstream step that left some (empty when none did: the setup step fills it)."""
    copy = Path(os.environ["MC_OUT_DIR"]) / WORKING_COPY
    if not copy.exists():
        restore_copy(task, copy)
    return copy


def restore_copy(task, copy):
    copy.mkdir(parents=True)
    prefix = WORKING_COPY + "/"
    for name in sorted(task.get("upstream", {})):
        files = [d for d in task["upstream"][name].get("drops", []) if d["path"].startswith(prefix)]
        for found in files:
            target = copy / found["path"].removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found["file"], target)
        if files:
            return


def copy_tree(src, dst):
    """A copy of src that this agent may edit: the applied mission tree is read-only, and its
    modes must not come along (in the sandbox not even root may write a read-only file)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*SKIP_DIRS))
    for path in [dst, *dst.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def source_files(root, include_tests=True):
    """Relative paths of the .py files under root, sorted."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts):
            continue
        if include_tests or rel.parts[0] != "tests":
            found.append(rel.as_posix())
    return found


def module_name(rel_path):
    """'textstats/core.py' -> 'textstats.core'."""
    return rel_path.removesuffix(".py").replace("/", ".")


def run_tests(root):
    """Run the app's unittest suite in a child process; {run, failures: [[id, msg]], skipped}.

    `-B` keeps the child from writing __pycache__ next to the sources.
    """
    proc = subprocess.run(
        [sys.executable, "-B", "-c", TEST_RUNNER],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"run": 0, "failures": [["<suite>", message]], "skipped": 0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def describe_failures(report, limit=5):
    shown = [f"{test_id.rsplit('.', 1)[-1]}: {msg}" for test_id, msg in report["failures"]]
    more = len(shown) - limit
    return "; ".join(shown[:limit]) + (f"; and {more} more" if more > 0 else "")


# --- diffs --------------------------------------------------------------------------------


def tree_diff(before, after):
    """A unified diff (git style, a/ and b/ prefixes) from tree `before` to tree `after`."""
    old, new = set(text_files(before)), set(text_files(after))
    chunks = []
    for rel in sorted(old | new):
        a = read_lines(before / rel) if rel in old else []
        b = read_lines(after / rel) if rel in new else []
        if a == b:
            continue
        from_file = f"a/{rel}" if rel in old else "/dev/null"
        to_file = f"b/{rel}" if rel in new else "/dev/null"
        chunks.append(f"diff --git a/{rel} b/{rel}\n")
        if rel not in old:
            chunks.append("new file mode 100644\n")
        elif rel not in new:
            chunks.append("deleted file mode 100644\n")
        chunks.extend(difflib.unified_diff(a, b, from_file, to_file))
    return "".join(chunks)


def text_files(root):
    return [
        p.relative_to(root).as_posix()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts)
    ]


def read_lines(path):
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def diff_stats(diff):
    """(files changed, lines added, lines removed) of a unified diff."""
    lines = diff.splitlines()
    files = sum(1 for line in lines if line.startswith("diff --git "))
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return files, added, removed


def added_lines(diff):
    return [
        line[1:]
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
