"""Researcher agent: pulls checkable facts out of the text files in the mission's corpus.

Offline and deterministic. A "fact" is a sentence that names a date or number *and* a named
thing (a capitalised word that does not start the sentence), which in practice catches
"Walter Tichy released RCS in 1982" and skips "That change of habit shaped everything".
The best few per document go to out/facts.md, grouped by source, each with an id [Fn] the
writer and the reviewer refer to.

Memory: the agent remembers how many documents it has read over all its runs and a short
digest of each, so it can say which documents are new or changed since it last looked.

Protocol (mc `files`): reads $MC_TASK_JSON, writes $MC_OUT_DIR/facts.md and $MC_RESULT_JSON.
"""

import hashlib
import json
import os
import re
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
NUMBER = re.compile(r"\b\d+(\.\d+)*\b")
NAME = re.compile(r"^[A-Z][\w&'-]*\w$")
MAX_WORDS = 45  # longer sentences are explanations, not facts


def read_document(path):
    """(title, body text) of a markdown or text file; the title is its first # heading."""
    title, lines = path.stem.replace("-", " ").capitalize(), []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            title = line[2:].strip()
        elif not line.startswith("#"):
            lines.append(line)
    return title, " ".join(" ".join(lines).split())


def score(sentence):
    """How fact-like a sentence is: 0 unless it has a number and a named thing."""
    words = [w.strip(",;:()\"'") for w in sentence.split()]
    if len(words) > MAX_WORDS:
        return 0
    names = {w for w in words[1:] if NAME.match(w)}
    years = YEAR.findall(sentence)
    numbers = NUMBER.findall(sentence)
    if not names or not numbers:
        return 0
    return 2 * len(years) + len(numbers) + min(len(names), 4)


def extract_facts(text, limit):
    """The `limit` most fact-like sentences of a text, in their original order."""
    sentences = SENTENCE_END.split(text)
    ranked = sorted(((score(s), i) for i, s in enumerate(sentences)), key=lambda p: (-p[0], p[1]))
    keep = sorted(i for s, i in ranked[:limit] if s > 0)
    return [sentences[i].strip() for i in keep]


def documents(corpus, order):
    """The files to read: those named in `order` (the task's inputs), else every .md/.txt."""
    if order:
        return [corpus / name for name in order]
    if not corpus.is_dir():
        return []
    return sorted(p for p in corpus.iterdir() if p.suffix in (".md", ".txt"))


def render(topic, sources):
    lines, n = [f"# Facts: {topic}", ""], 0
    for s, (rel, title, facts) in enumerate(sources, start=1):
        lines += [f"## [S{s}] {title} ({rel})", ""]
        for fact in facts:
            n += 1
            lines.append(f"- [F{n}] {fact}")
        lines.append("")
    return "\n".join(lines), n


def main():
    task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
    inputs = task.get("inputs", {})
    repo = Path(os.environ.get("MC_REPO", task.get("repo", ".")))
    corpus = repo / inputs.get("corpus", "corpus")
    limit = int(inputs.get("facts_per_document", 4))
    topic = inputs.get("topic", task["title"])

    paths = documents(corpus, inputs.get("documents"))
    missing = [p.name for p in paths if not p.is_file()]
    if missing or not paths:
        problem = f"not in {corpus}: {', '.join(missing)}" if missing else f"{corpus} is empty"
        Path(os.environ["MC_RESULT_JSON"]).write_text(
            json.dumps({"status": "failed", "error": problem})
        )
        return

    memory = task.get("memory", {}).get("agent", {})
    known = dict(memory.get("known_documents", {}))
    sources, changed = [], []
    for path in paths:
        rel = path.relative_to(repo).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        if known.get(rel) != digest:
            changed.append(rel)
        known[rel] = digest
        title, text = read_document(path)
        sources.append((rel, title, extract_facts(text, limit)))

    markdown, count = render(topic, sources)
    Path(os.environ["MC_OUT_DIR"], "facts.md").write_text(markdown, encoding="utf-8")
    read_total = int(memory.get("documents_read", 0)) + len(sources)
    summary = (
        f"Extracted {count} facts from {len(sources)} documents"
        f" ({len(changed)} new or changed since my last run)."
    )
    result = {
        "status": "done",
        "output": summary,
        "outputs": {"facts": count, "documents": [rel for rel, _, _ in sources]},
        "cost_usd": 0,
        "memory": {"agent": {"documents_read": read_total, "known_documents": known}},
    }
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(result, indent=2))
    print(summary)


if __name__ == "__main__":
    main()
