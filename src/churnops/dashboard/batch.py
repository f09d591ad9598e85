"""Scoring an uploaded table through the API: read it, check its columns, send it in chunks.

The API is the only judge of a row: a chunk it rejects (422) comes back with the rows and fields
at fault; those rows are set aside with the API's reason and the rest of the chunk is sent again.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from churnops.dashboard.charts_scoring import reason_label
from churnops.dashboard.client import ApiClient, Ok, Problem

FORMATS = {".csv": "csv", ".xlsx": "excel", ".xls": "excel", ".parquet": "parquet"}
ROW_FIELD = re.compile(r"^customers\[(\d+)\](?:\.(.+))?$")
MAX_RATE_LIMIT_RETRIES = 3


class UploadError(ValueError):
    """The file cannot be scored as it is; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_upload(name: str, data: bytes) -> pd.DataFrame:
    """CSV, XLSX or Parquet bytes as a frame; anything else is an UploadError in words."""
    suffix = PurePath(name).suffix.lower()
    kind = FORMATS.get(suffix)
    if kind is None:
        raise UploadError(
            [f"{name}: unsupported file type {suffix or '(none)'}; use CSV, XLSX or Parquet"]
        )
    try:
        if kind == "csv":
            frame = pd.read_csv(io.BytesIO(data))
        elif kind == "excel":
            frame = pd.read_excel(io.BytesIO(data))
        else:
            frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # any parser failure is the file's fault, said in words
        raise UploadError([f"{name}: cannot be read as {kind}: {exc}"]) from exc
    if frame.empty:
        raise UploadError([f"{name}: has no rows"])
    return frame


def plan_columns(columns: list[str], schema: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(columns to send, notes) or UploadError listing every missing and unknown column.

    The target and the columns the model ignores are dropped with a note: a training file can be
    scored as it is. Anything else the model does not know is refused, like the API would.
    """
    features = [column["name"] for column in schema["features"]]
    known_extra = {schema.get("target")} | {c["name"] for c in schema.get("ignored") or []}
    id_column = schema.get("id_column")
    present = set(columns)
    problems = [
        f"missing column: {name} (a model feature)" for name in features if name not in present
    ]
    send: list[str] = [id_column] if id_column and id_column in present else []
    send += [name for name in features if name in present]
    notes: list[str] = []
    for name in columns:
        if name in send:
            continue
        if name in known_extra:
            notes.append(f"column {name} is not a model input: left out")
        else:
            problems.append(f"unknown column: {name} (the model has no such input)")
    if problems:
        raise UploadError(problems)
    return send, notes


def numbers_as_numbers(frame: pd.DataFrame, schema: Mapping[str, Any]) -> pd.DataFrame:
    """Text columns the model reads as numbers (a CSV column with one stray word is text):
    each value that parses becomes a number, the rest stays as written for the API to refuse."""
    out = frame.copy()
    for column in schema["features"]:
        name = column["name"]
        numeric = column.get("kind") == "numeric" or (
            column.get("kind") == "binary" and column.get("dtype") in ("int", "float")
        )
        if not numeric or name not in out.columns or pd.api.types.is_numeric_dtype(out[name]):
            continue
        original = out[name]
        blank = original.isna() | original.astype(str).str.strip().eq("")
        parsed = pd.to_numeric(original.where(~blank), errors="coerce")
        kept = original.where(parsed.isna() & ~blank, parsed).astype(object)
        out[name] = kept.where(~blank, None)
    return out


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: numpy scalars as Python values, NaN as null."""
    columns = list(frame.columns)
    return [
        {name: _plain(value) for name, value in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


@dataclass
class Rejected:
    row: int  # 1-based data row of the upload (the header is not counted)
    reason: str


@dataclass
class BatchOutcome:
    scored: pd.DataFrame  # the upload's scored rows with the score columns added
    rejected: list[Rejected] = field(default_factory=list)
    problem: Problem | None = None  # the API stopped answering: what was scored is kept
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        if self.scored.empty:
            return {}
        return {str(k): int(v) for k, v in self.scored["risk_level"].value_counts().items()}

    @property
    def churn_rate(self) -> float:
        return float(self.scored["will_churn"].mean()) if len(self.scored) else 0.0


def _rejections(problem: Problem, rows: list[int]) -> dict[int, str]:
    """{position in the sent chunk: reason} from a 422 naming `customers[i].field` paths."""
    found: dict[int, str] = {}
    for path, reason in problem.fields.items():
        match = ROW_FIELD.match(path)
        if match is None or int(match.group(1)) >= len(rows):
            continue
        position = int(match.group(1))
        text = f"{match.group(2)}: {reason}" if match.group(2) else reason
        found[position] = f"{found[position]}; {text}" if position in found else text
    return found


def _send_chunk(
    client: ApiClient,
    records: list[dict[str, Any]],
    rows: list[int],
    rejected: list[Rejected],
    sleep: Callable[[float], None],
) -> tuple[list[int], list[dict[str, Any]]] | Problem:
    """Score one chunk; returns (rows scored, their predictions) or the Problem that stopped it."""
    pending = list(range(len(records)))
    retries = 0
    while pending:
        result = client.predict_batch([records[i] for i in pending])
        if isinstance(result, Ok):
            return [rows[i] for i in pending], list(result.value["predictions"])
        if result.kind == "rate_limited" and retries < MAX_RATE_LIMIT_RETRIES:
            retries += 1
            sleep(min(result.retry_after or 1.0, 10.0))
            continue
        bad = _rejections(result, pending) if result.kind == "invalid" else {}
        if not bad:
            return result
        for position, reason in sorted(bad.items()):
            rejected.append(Rejected(rows[pending[position]] + 1, reason))
        pending = [index for position, index in enumerate(pending) if position not in bad]
    return [], []


def reasons_text(reasons: list[Mapping[str, Any]], limit: int = 3) -> str:
    raising = [r for r in reasons if float(r.get("contribution", 0)) > 0][:limit]
    return "; ".join(reason_label(str(r["feature"]), r.get("value")) for r in raising)


def score_upload(
    client: ApiClient,
    frame: pd.DataFrame,
    *,
    send: list[str],
    schema: Mapping[str, Any],
    chunk_rows: int,
    on_progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchOutcome:
    """Score every row of `frame` through POST /predict/batch, `chunk_rows` at a time."""
    total = len(frame)
    payload = numbers_as_numbers(frame[send], schema)
    rejected: list[Rejected] = []
    done_rows: list[int] = []
    predictions: list[dict[str, Any]] = []
    problem: Problem | None = None
    for start in range(0, total, chunk_rows):
        chunk = payload.iloc[start : start + chunk_rows]
        answer = _send_chunk(
            client, records_of(chunk), list(range(start, start + len(chunk))), rejected, sleep
        )
        if isinstance(answer, Problem):
            problem = answer
            break
        done_rows.extend(answer[0])
        predictions.extend(answer[1])
        if on_progress is not None:
            on_progress(min(start + chunk_rows, total), total)
    scored = frame.iloc[done_rows].copy()
    scored.insert(0, "row", [row + 1 for row in done_rows])
    scored["churn_probability"] = [float(p["churn_probability"]) for p in predictions]
    scored["will_churn"] = [bool(p["will_churn"]) for p in predictions]
    scored["risk_level"] = [str(p["risk_level"]) for p in predictions]
    scored["top_reasons"] = [reasons_text(p.get("reasons") or []) for p in predictions]
    return BatchOutcome(scored.reset_index(drop=True), rejected, problem)


def riskiest(scored: pd.DataFrame, *, id_column: str | None, n: int = 10) -> pd.DataFrame:
    """The `n` customers most likely to churn, with their reasons."""
    who = [id_column] if id_column and id_column in scored.columns else []
    columns = ["row", *who, "churn_probability", "risk_level", "top_reasons"]
    return scored.nlargest(n, "churn_probability")[columns].reset_index(drop=True)
