"""The validation report: a JSON document (what the gates read) and a self-contained HTML page."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from churnops.validation.result import CheckResult, CurvePoint, SegmentRow, ValidationResult

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2933;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid
#d9e2ec;padding-bottom:.3rem}.meta{color:#52606d}
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.9rem}
th,td{padding:.35rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#f5f7fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;color:#fff}
.passed{background:#2f855a}.failed{background:#c53030}.overridden{background:#b7791f}
.info{background:#718096}tr.bad td{background:#fff5f5}tr.allowed td{background:#fffaf0}
.status{font-size:1.1rem;margin:1rem 0}.bar{background:#3b82f6;height:.7rem;display:inline-block}
ul.notes li{color:#52606d}details summary{cursor:pointer;margin:.5rem 0}
"""


def write_json(result: ValidationResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2))
    return path


def write_html(result: ValidationResult, path: Path, *, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, title=title))
    return path


def render_html(result: ValidationResult, *, title: str) -> str:
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        _summary(result, title),
        _checks_section(result),
        _fairness_section(result),
        _curves_section(result.curves),
        _segments_section(result),
        "</body></html>",
    ]
    return "\n".join(parts)


def _badge(status: str, text: str | None = None) -> str:
    return f"<span class='badge {status}'>{escape(text or status)}</span>"


def _summary(result: ValidationResult, title: str) -> str:
    champion = f"champion v{result.champion}" if result.champion else "no champion"
    lines = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='meta'>{escape(result.model)} against {escape(champion)}, on "
        f"{escape(result.evaluated_on)} ({result.rows:,} rows), {result.duration_seconds:.2f} s</p>",
        f"<p class='status'>{_badge(result.status)} {len(result.checks)} checks, "
        f"{len(result.failures())} failed, {len(result.blocking_failures())} blocking</p>",
    ]
    lines += _reason_list("Blocks promotion", result.blocking_failures())
    lines += _reason_list("Allowed by an override (recorded)", result.allowed_failures())
    if result.notes:
        lines.append(
            "<ul class='notes'>" + "".join(f"<li>{escape(n)}</li>" for n in result.notes) + "</ul>"
        )
    return "\n".join(lines)


def _reason_list(heading: str, checks: Sequence[CheckResult]) -> list[str]:
    if not checks:
        return []
    items = "".join(f"<li>{escape(str(c))}</li>" for c in checks)
    return [f"<p><strong>{escape(heading)}:</strong></p><ul>{items}</ul>"]


def _table(headers: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "<td class='num'>–</td>"
    if 0 < abs(value) < 10**-digits:  # a tolerance such as 1e-9 must not read as 0
        return f"<td class='num'>{value:.1e}</td>"
    return f"<td class='num'>{value:.{digits}f}</td>"


def _checks_section(result: ValidationResult) -> str:
    rows = []
    for c in result.checks:
        if c.passed:
            state, css = "passed", ""
        elif c.check in result.blocking and c.check in result.allow:
            state, css = "overridden", " class='allowed'"
        else:
            state = "failed" if c.check in result.blocking else "info"
            css = " class='bad'"
        rows.append(
            f"<tr{css}><td>{_badge(state, 'pass' if c.passed else 'fail')}</td>"
            f"<td>{escape(c.check)}</td><td>{escape(c.subject)}</td>{_num(c.value)}{_num(c.limit)}"
            f"<td>{escape(c.detail)}</td></tr>"
        )
    headers = ("", "check", "subject", "value", "limit", "detail")
    return "<h2>Checks</h2>" + _table(headers, rows)


def _fairness_section(result: ValidationResult) -> str:
    if not result.groups:
        return "<h2>Fairness</h2><p class='meta'>No sensitive columns configured.</p>"
    rows = [
        f"<tr><td>{escape(g.column)}</td><td>{escape(g.group)}</td><td class='num'>{g.rows:,}</td>"
        f"{_num(g.selection_rate, 3)}{_num(g.true_positive_rate, 3)}{_num(g.false_positive_rate, 3)}</tr>"
        for g in result.groups
    ]
    headers = (
        "column",
        "group",
        "rows",
        "selection rate",
        "true positive rate",
        "false positive rate",
    )
    return "<h2>Fairness: decisions by group</h2>" + _table(headers, rows)


def _curves_section(curves: Sequence[CurvePoint]) -> str:
    if not curves:
        return ""
    rows = []
    for p in curves:
        width = max(int(p.mean_probability * 300), 1)
        rows.append(
            f"<tr><td>{escape(p.column)}</td><td>{escape(p.value)}</td>{_num(p.mean_probability, 3)}"
            f"<td><span class='bar' style='width:{width}px'></span></td></tr>"
        )
    headers = ("column", "set to", "mean probability", "")
    return "<h2>Directional expectations: every customer set to each value</h2>" + _table(
        headers, rows
    )


def _segment_rows(segments: Sequence[SegmentRow]) -> list[str]:
    return [
        f"<tr><td>{escape(s.column)}</td><td>{escape(s.segment)}</td><td class='num'>{s.rows:,}</td>"
        f"<td class='num'>{s.positives:,}</td>{_num(s.roc_auc)}{_num(s.champion_roc_auc)}"
        f"{_num(s.recall, 3)}{_num(s.calibration_gap, 3)}</tr>"
        for s in segments
    ]


def _segments_section(result: ValidationResult) -> str:
    headers = (
        "feature",
        "segment",
        "rows",
        "churners",
        "ROC-AUC",
        "champion ROC-AUC",
        "recall",
        "calibration gap",
    )
    weakest = _table(headers, _segment_rows(result.weakest))
    every = _table(headers, _segment_rows(result.segments))
    return (
        f"<h2>Weakest segments</h2>{weakest}"
        f"<details><summary>All {len(result.segments)} segments</summary>{every}</details>"
    )
