"""A deliberately small, safe Markdown subset for content drops shown on the task page.

The text is HTML-escaped first and only then given the few tags this module writes itself
(headings, paragraphs, lists, code, emphasis), so no input can produce markup of its own.
Links and images stay as their literal text: a drop can never point the browser anywhere.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")


def _inline(text: str) -> str:
    """Escape, then mark up `code`, **strong** and *em* (code spans are left alone)."""
    parts = text.split("`")
    out: list[str] = []
    for i, part in enumerate(parts):
        safe = str(escape(part))
        if i % 2 == 1 and i < len(parts) - 1:
            out.append(f"<code>{safe}</code>")
        else:
            if i % 2 == 1:  # an unpaired backtick: keep it
                safe = "`" + safe
            out.append(_EM.sub(r"<em>\1</em>", _STRONG.sub(r"<strong>\1</strong>", safe)))
    return "".join(out)


class _Blocks:
    def __init__(self) -> None:
        self.html: list[str] = []
        self.para: list[str] = []
        self.list_tag: str | None = None

    def flush(self) -> None:
        if self.para:
            self.html.append("<p>" + _inline(" ".join(self.para)) + "</p>")
            self.para = []
        if self.list_tag:
            self.html.append(f"</{self.list_tag}>")
            self.list_tag = None

    def item(self, tag: str, text: str) -> None:
        if self.para:
            self.flush()
        if self.list_tag != tag:
            self.flush()
            self.html.append(f"<{tag}>")
            self.list_tag = tag
        self.html.append("<li>" + _inline(text) + "</li>")


def render_markdown(text: str) -> Markup:
    blocks = _Blocks()
    code: list[str] | None = None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if code is None:
                blocks.flush()
                code = []
            else:
                blocks.html.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
                code = None
            continue
        if code is not None:
            code.append(line)
        elif not line.strip():
            blocks.flush()
        elif m := _HEADING.match(line):
            blocks.flush()
            level = min(len(m.group(1)) + 2, 6)  # the page owns h1/h2
            blocks.html.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif m := _BULLET.match(line):
            blocks.item("ul", m.group(1))
        elif m := _NUMBERED.match(line):
            blocks.item("ol", m.group(1))
        else:
            if blocks.list_tag:
                blocks.flush()
            blocks.para.append(line.strip())
    if code is not None:
        blocks.html.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
    blocks.flush()
    return Markup("\n".join(blocks.html))
