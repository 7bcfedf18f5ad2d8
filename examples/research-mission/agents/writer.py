"""Writer agent: drafts a short article from the researcher's facts, citing every sentence.

Offline and deterministic. It finds `facts.md` among the upstream content drops listed in
task.json (`upstream.<task>.drops[].file`), keeps the sources in the researcher's order,
orders each source's facts by the first year they mention, and writes one paragraph per
source with a numbered citation after each sentence, a timeline, and the list of sources.

Memory: the agent counts the drafts it has written and numbers each new one after them.

Protocol (mc `files`): reads $MC_TASK_JSON, writes $MC_OUT_DIR/draft.md and $MC_RESULT_JSON.
"""

import json
import os
import re
from pathlib import Path

SOURCE = re.compile(r"^## \[S(\d+)\] (.+) \((.+)\)$")
FACT = re.compile(r"^- \[F(\d+)\] (.+)$")
YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


def find_facts_file(task):
    """The path of the first upstream drop named facts.md, or None."""
    for upstream in task.get("upstream", {}).values():
        for drop in upstream.get("drops", []):
            if drop["path"] == "facts.md":
                return Path(drop["file"])
    return None


def parse_facts(text):
    """[(title, path, [fact, ...]), ...] in the order the researcher wrote them."""
    sources = []
    for line in text.splitlines():
        if m := SOURCE.match(line):
            sources.append((m.group(2), m.group(3), []))
        elif (m := FACT.match(line)) and sources:
            sources[-1][2].append(m.group(2))
    return [s for s in sources if s[2]]


def first_year(sentence):
    m = YEAR.search(sentence)
    return int(m.group(1)) if m else 9999


def cite(sentence, n):
    """'Git shipped in 2005.' -> 'Git shipped in 2005 [1].'"""
    if sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]."


def draft(title, sources, number):
    years = sorted({int(y) for _, _, facts in sources for f in facts for y in YEAR.findall(f)})
    span = f" from {years[0]} to {years[-1]}" if years else ""
    names = "; ".join(t.split(":")[0] for t, _, _ in sources)
    lines = [
        f"# {title}",
        "",
        f"_Draft {number}, written from the researcher's notes._",
        "",
        f"This post follows {len(sources)} threads{span}: {names}.",
        "",
    ]
    for n, (source_title, _, facts) in enumerate(sources, start=1):
        lines += [f"## {source_title}", ""]
        ordered = sorted(facts, key=first_year)  # stable: same-year facts keep their order
        lines += [" ".join(cite(fact, n) for fact in ordered), ""]
    lines += ["## Timeline", ""]
    for n, (source_title, _, facts) in enumerate(sources, start=1):
        found = sorted({int(y) for f in facts for y in YEAR.findall(f)})
        if found:
            lines.append(f"- {', '.join(map(str, found))}: {source_title.split(':')[0]} [{n}]")
    lines += ["", "## Sources", ""]
    lines += [f"{n}. {t} ({path})" for n, (t, path, _) in enumerate(sources, start=1)]
    return "\n".join(lines) + "\n"


def result(payload):
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(payload, indent=2))


def main():
    task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
    facts_file = find_facts_file(task)
    if facts_file is None:
        result({"status": "failed", "error": "no facts.md among the upstream drops"})
        return
    sources = parse_facts(facts_file.read_text(encoding="utf-8"))
    if not sources:
        result({"status": "failed", "error": f"{facts_file.name} lists no facts"})
        return

    memory = task.get("memory", {}).get("agent", {})
    number = int(memory.get("drafts_written", 0)) + 1
    title = task.get("inputs", {}).get("headline", task["title"])
    text = draft(title, sources, number)
    Path(os.environ["MC_OUT_DIR"], "draft.md").write_text(text, encoding="utf-8")
    words = len(text.split())
    summary = f"Draft {number}: {words} words, {len(sources)} sources cited."
    result(
        {
            "status": "done",
            "output": summary,
            "outputs": {"words": words, "sources": len(sources)},
            "cost_usd": 0,
            "memory": {"agent": {"drafts_written": number}},
        }
    )
    print(summary)


if __name__ == "__main__":
    main()
