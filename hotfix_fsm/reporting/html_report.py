"""``hotfix report --html``: the post-mortem as one self-contained HTML file.

The Markdown post-mortem is converted line by line (it only uses headings, lists, tables,
paragraphs, inline code and bold), every text HTML-escaped before any markup is added,
and each Mermaid block is replaced by the same picture drawn by pygal (``pictures``) as an
SVG image in a ``data:`` URL, with its words as ``alt`` and caption (no script, no network:
the file opens offline and under a strict Content-Security-Policy).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence

from hotfix_fsm.core.redact import redact
from hotfix_fsm.reporting.pictures import data_url, figure, pictures
from hotfix_fsm.reporting.postmortem import render_markdown
from hotfix_fsm.store import Hotfix, JournalEntry

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: left; vertical-align: top; }
code { background: #f3f3f3; padding: 0 .2rem; }
figure.chart { margin: .5rem 0; }
figure.chart img { display: block; max-width: 100%; height: auto; }
figure.chart figcaption { color: #555; font-size: .9rem; }
"""
_INLINE = re.compile(r"`([^`]*)`|\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escape, then turn `code` and **bold** into markup (on the escaped text)."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        if m.group(1) is not None:
            out.append(f"<code>{html.escape(m.group(1))}</code>")
        else:
            out.append(f"<strong>{html.escape(m.group(2))}</strong>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    cells = re.split(r"(?<!\\)\|", inner)
    return [c.strip().replace("\\|", "|") for c in cells]


def markdown_to_html(markdown: str, pictures: Iterator[str]) -> str:
    """The post-mortem's Markdown subset as HTML; Mermaid blocks take the next picture."""
    out: list[str] = []
    lines = markdown.splitlines()
    i, in_list, in_sub = 0, False, False

    def close_lists() -> None:
        nonlocal in_list, in_sub
        if in_sub:
            out.append("</ul></li>")
            in_sub = False
        if in_list:
            out.append("</ul>")
            in_list = False

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            close_lists()
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            out.append(next(pictures, ""))
        elif line.startswith("#"):
            close_lists()
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            close_lists()
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in _cells(line)) + "</tr>")
            i += 1
            if i < len(lines) and set(lines[i].strip()) <= set("|-: "):
                i += 1
            while i < len(lines) and lines[i].startswith("|"):
                cells = "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i]))
                out.append(f"<tr>{cells}</tr>")
                i += 1
            out.append("</table>")
            continue
        elif line.startswith("  - "):
            if not in_sub:
                if out and out[-1].endswith("</li>"):
                    out[-1] = out[-1][: -len("</li>")]
                out.append("<ul>")
                in_sub = True
            out.append(f"<li>{_inline(line[4:])}</li>")
        elif line.startswith("- "):
            if in_sub:
                out.append("</ul></li>")
                in_sub = False
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            close_lists()
            out.append(f"<p>{_inline(line)}</p>")
        else:
            close_lists()
        i += 1
    close_lists()
    return "\n".join(out)


def render_html(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> str:
    """The post-mortem as one HTML document with SVG pictures; every text escaped."""
    markdown = render_markdown(hotfix, journal)
    # In the Markdown's order: a chart per metric with a numeric value, then the timeline.
    timeline, *metrics = pictures(journal)
    drawn = [*(p for p in metrics if p.has_data), timeline]
    # The text is redacted as a whole; the images (their own texts redacted when drawn) are
    # put in afterwards, so a short secret can never mask a piece of base64 and break one.
    slots = [f"\x00picture-{i}\x00" for i in range(len(drawn))]
    body = markdown_to_html(markdown, iter(slots))
    title = html.escape(redact(f"Post-mortem: {hotfix.id}"))
    document = redact(
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
    for slot, picture in zip(slots, drawn, strict=True):
        document = document.replace(slot, figure(picture, data_url(picture.svg())), 1)
    return document


__all__ = ["render_html"]
