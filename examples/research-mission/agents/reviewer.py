"""Reviewer agent: checks the writer's draft against the researcher's facts, sends it back once.

Offline and deterministic. Blocking problems: a body sentence without a citation, a cited
sentence that is not among that source's facts (an invented or mis-cited claim), a source
never cited, or a length outside the task's `min_words`..`max_words`. Editorial notes (not
blocking): sentences that lean on context the reader lacks ("Both projects…", "…started it
at…"), very long sentences, and researched facts the draft left out.

House rule: every new draft gets two reads. The first read writes out/review-notes.md and
sends the task back (`status: retry` with the findings) after recording in task memory
which draft it read; the second read of the same draft decides: `done` with a verdict in
out/review.md, or `failed` listing the blocking problems. (A plain Task cannot re-run its
upstream writer; a workflow step with `verifies:` is where rework of the draft belongs.)

Memory: task memory remembers the draft already read once; agent memory counts reviews.

Protocol (mc `files`): reads $MC_TASK_JSON, writes $MC_OUT_DIR/*.md and $MC_RESULT_JSON.
"""

import hashlib
import json
import os
import re
from pathlib import Path

CITED = re.compile(r"\s*(.+?)\s\[(\d+)\]([.!?])(?=\s|$)")  # "Git shipped in 2005 [1]."
SOURCE = re.compile(r"^## \[S(\d+)\] .+$")
FACT = re.compile(r"^- \[F\d+\] (.+)$")
NOT_BODY = ("Timeline", "Sources")
CONTEXT_WORDS = {"it", "its", "both", "that", "this", "they", "these", "those", "he", "she"}
LONG_SENTENCE = 30


def upstream_drop(task, name):
    for upstream in task.get("upstream", {}).values():
        for drop in upstream.get("drops", []):
            if drop["path"] == name:
                return Path(drop["file"])
    return None


def facts_by_source(text):
    """{source number: [fact sentence, ...]} from the researcher's facts.md."""
    facts, current = {}, None
    for line in text.splitlines():
        if m := SOURCE.match(line):
            current = int(m.group(1))
            facts[current] = []
        elif (m := FACT.match(line)) and current is not None:
            facts[current].append(m.group(1))
    return facts


def body_paragraphs(draft):
    """[(section title, paragraph text)] of the sections that make claims."""
    out, section = [], None
    for block in draft.split("\n\n"):
        block = block.strip()
        if block.startswith("## "):
            section = block[3:]
        elif section and section not in NOT_BODY and block:
            out.append((section, " ".join(block.split())))
    return out


def clip(text, limit=60):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def editorial_notes(words, n):
    """Sentences lifted out of their document: a leading pronoun or an early "it" has
    nothing to point to any more; very long ones are hard to read."""
    quote, notes = f"'{' '.join(words[:6])}…' [{n}]", []
    early = [w.strip(",.;:").lower() for w in words[: len(words) // 2]]
    if words[0].lower() in CONTEXT_WORDS or "it" in early:
        notes.append(f"{quote} leans on context the reader lacks")
    if len(words) > LONG_SENTENCE:
        notes.append(f"{quote} has {len(words)} words")
    return notes


def review(draft, facts, min_words, max_words):
    """(blocking problems, editorial notes, number of cited sentences)."""
    problems, notes, cited, used = [], [], 0, set()
    for section, paragraph in body_paragraphs(draft):
        rest = CITED.sub("", paragraph).strip()
        if rest:
            problems.append(f"uncited text in '{section}': '{clip(rest)}'")
        for claim, n, stop in CITED.findall(paragraph):
            cited, n, sentence = cited + 1, int(n), claim + stop
            if sentence not in facts.get(n, []):
                problems.append(f"'{clip(sentence)}' is not a fact of source [{n}]")
                continue
            used.add(sentence)
            notes += editorial_notes(sentence.split(), n)
    cited_sources = {int(n) for _, p in body_paragraphs(draft) for _, n, _ in CITED.findall(p)}
    problems += [f"source [{n}] is never cited" for n in sorted(set(facts) - cited_sources)]
    left_out = sum(1 for fs in facts.values() for f in fs if f not in used)
    if left_out:
        notes.append(f"{left_out} researched facts are not used")
    words = len(draft.split())
    if not min_words <= words <= max_words:
        problems.append(f"{words} words; the brief asks for {min_words} to {max_words}")
    return problems, notes, cited


def report(title, items):
    return f"## {title}\n\n" + ("\n".join(f"- {i}" for i in items) or "- none") + "\n"


def send_back(problems, notes, sha):
    """The first read's result: a retry whose reason is the findings, and the draft's digest
    in task memory so the next attempt knows this draft has been read once."""
    first = (problems + notes)[:1]
    return {
        "status": "retry",
        "error": (
            f"sent back: {len(problems)} blocking problems, {len(notes)} editorial notes"
            + (f"; first: {first[0]}" if first else "")
            + "; the second read decides"
        ),
        "memory": {"task": {"reviewed_once": True, "first_read_sha256": sha}},
    }


def main():
    task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
    out_dir, result_file = Path(os.environ["MC_OUT_DIR"]), Path(os.environ["MC_RESULT_JSON"])
    draft_file, facts_file = upstream_drop(task, "draft.md"), upstream_drop(task, "facts.md")
    if draft_file is None or facts_file is None:
        missing = "draft.md" if draft_file is None else "facts.md"
        result_file.write_text(json.dumps({"status": "failed", "error": f"no {missing} upstream"}))
        return

    draft = draft_file.read_text(encoding="utf-8")
    facts = facts_by_source(facts_file.read_text(encoding="utf-8"))
    inputs = task.get("inputs", {})
    limits = int(inputs.get("min_words", 150)), int(inputs.get("max_words", 700))
    problems, notes, cited = review(draft, facts, *limits)
    sha = hashlib.sha256(draft.encode()).hexdigest()
    memory = task.get("memory", {})
    reviews = int(memory.get("agent", {}).get("reviews", 0)) + 1
    first_read = memory.get("task", {}).get("first_read_sha256") != sha
    findings = report("Blocking problems", problems) + "\n" + report("Editorial notes", notes)

    if first_read:
        (out_dir / "review-notes.md").write_text("# First read\n\n" + findings)
        status = send_back(problems, notes, sha)
    elif problems:
        (out_dir / "review.md").write_text("# Verdict: rejected\n\n" + findings)
        status = {"status": "failed", "error": "rejected: " + "; ".join(problems[:3])}
    else:
        verdict = (
            f"Approved on the second read: {len(draft.split())} words, {cited} sentences"
            f" each cited to one of {len(facts)} sources; {len(notes)} editorial notes"
            " left for the author."
        )
        (out_dir / "review.md").write_text(f"# Verdict: approved\n\n{verdict}\n\n{findings}")
        status = {"status": "done", "output": verdict, "outputs": {"notes": notes}}
    status["cost_usd"] = 0
    status.setdefault("memory", {})["agent"] = {"reviews": reviews}
    result_file.write_text(json.dumps(status, indent=2))
    print(status.get("output") or status["error"])


if __name__ == "__main__":
    main()
