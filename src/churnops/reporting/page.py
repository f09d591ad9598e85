"""HTML scaffolding for self-contained reports: sections, table of contents, tables, one page."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --accent:#2f6fab; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
nav { position:fixed; top:0; left:0; bottom:0; width:250px; overflow-y:auto; padding:20px 16px;
      background:#fff; border-right:1px solid var(--line); font-size:13px; }
nav h2 { font-size:12px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted);
         margin:0 0 8px; }
nav ul { list-style:none; margin:0; padding-left:0; }
nav ul ul { padding-left:12px; border-left:2px solid var(--line); margin:4px 0 8px 4px; }
nav li { margin:2px 0; }
nav a { color:var(--ink); text-decoration:none; display:block; white-space:nowrap; overflow:hidden;
        text-overflow:ellipsis; }
nav a:hover { color:var(--accent); }
nav .kind { color:var(--muted); font-size:11px; }
main { margin-left:250px; padding:24px 32px 64px; max-width:1250px; }
header h1 { margin:0 0 4px; font-size:24px; }
header .sub { color:var(--muted); margin-bottom:16px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:12px 0 8px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 16px;
        min-width:130px; }
.card .v { font-size:20px; font-weight:600; }
.card .k { color:var(--muted); font-size:12px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px;
          margin:20px 0; }
section section { border:none; border-top:1px solid var(--line); border-radius:0; padding:16px 0 0;
                  margin:16px 0 0; }
h2 { font-size:19px; margin:0 0 8px; }
h3 { font-size:16px; margin:0 0 6px; }
h3 .kind { font-weight:400; color:var(--muted); font-size:13px; margin-left:6px; }
p.note { color:var(--muted); margin:4px 0 10px; }
table { border-collapse:collapse; font-size:12.5px; margin:6px 0; }
th, td { border-bottom:1px solid var(--line); padding:3px 10px; text-align:right; }
th { background:var(--bg); font-weight:600; }
td:first-child, th:first-child { text-align:left; }
code { background:var(--bg); padding:1px 4px; border-radius:3px; word-break:break-all; }
details { margin:6px 0; }
summary { cursor:pointer; color:var(--accent); }
.warn { color:#b44d12; }
.row { display:grid; grid-template-columns:repeat(auto-fill, minmax(480px, 1fr)); gap:24px; }
.row > div { min-width:0; }
"""


@dataclass
class Section:
    """One report section: anchor id, heading, HTML body and nested sections."""

    id: str
    title: str
    body: str
    children: list[Section] = field(default_factory=list)
    tag: str = ""  # small grey label next to the heading and in the table of contents


def slug(text: str, used: set[str]) -> str:
    """A unique HTML id derived from free text."""
    base = re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-") or "section"
    candidate, i = base, 2
    while candidate in used:
        candidate, i = f"{base}-{i}", i + 1
    used.add(candidate)
    return candidate


def html_table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    *,
    index: bool = False,
) -> str:
    """A plain escaped HTML table; `formats` maps column name to a value formatter."""
    formats = formats or {}
    columns = [str(c) for c in frame.columns]
    head = ([escape(str(frame.index.name or ""))] if index else []) + [escape(c) for c in columns]
    rows = []
    for label, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = [escape(str(label))] if index else []
        for name, value in zip(columns, row, strict=True):
            fmt = formats.get(name, fmt_value)
            cells.append(escape(fmt(value)))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return f"<table><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_int(value: Any) -> str:
    return f"{int(value):,}"


def fmt_pct(value: Any) -> str:
    value = float(value)
    if math.isnan(value):
        return "–"
    if 0 < value < 0.001:
        return "<0.1%"
    return f"{100 * value:.1f}%"


def cards(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="v">{escape(v)}</div>'
            f'<div class="k">{escape(k)}</div></div>'
            for k, v in items
        )
        + "</div>"
    )


def _toc(sections: Sequence[Section]) -> str:
    items = []
    for s in sections:
        tag = f' <span class="kind">{escape(s.tag)}</span>' if s.tag else ""
        inner = _toc(s.children) if s.children else ""
        items.append(
            f'<li><a href="#{s.id}" title="{escape(s.title)}">{escape(s.title)}{tag}</a>'
            f"{inner}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _section(s: Section, level: int) -> str:
    tag = f'<span class="kind">{escape(s.tag)}</span>' if s.tag else ""
    inner = "".join(_section(c, level + 1) for c in s.children)
    return (
        f'<section id="{s.id}"><h{level}>{escape(s.title)}{tag}</h{level}>{s.body}{inner}</section>'
    )


def render_page(*, title: str, header: str, sections: Sequence[Section], script: str) -> str:
    """The whole document: CSS and `script` (the plotting library) inline, nothing fetched."""
    body = "".join(_section(s, 2) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{script}</script>'
        "</head><body>"
        f"<nav><h2>Contents</h2>{_toc(sections)}</nav>"
        f"<main><header>{header}</header>{body}</main>"
        "</body></html>\n"
    )
