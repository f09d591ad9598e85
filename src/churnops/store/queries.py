"""Read-only aggregates of the prediction store, computed in the database.

What a dashboard needs from the rows themselves (how many, per day; one feature's counts on the
reference's bins) without pulling rows into Python: a million predictions come back as a few
dozen grouped rows. Same SQL on SQLite and PostgreSQL; nothing here writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    case,
    func,
    inspect,
    literal,
    select,
    union_all,
)
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.models import to_utc
from churnops.store.store import PREDICTIONS, PredictionStore

COMPOUND_LIMIT = 200  # SELECTs per UNION ALL (SQLite allows 500)


def _fail(what: str, exc: SQLAlchemyError) -> StoreError:
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return StoreError(f"prediction store: cannot {what}: {lines[0] if lines else type(exc)}")


def _window(stmt: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(column >= to_utc(since))
    if until is not None:
        stmt = stmt.where(column < to_utc(until))
    return stmt


@dataclass(frozen=True)
class StoreStatus:
    """Whether the store has its tables, how many predictions it holds and over what time."""

    ready: bool  # tables exist (migrations ran at least once)
    first: datetime | None = None  # the oldest and newest prediction (None: none stored)
    last: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.first is None


def store_status(store: PredictionStore) -> StoreStatus:
    """Time span of the stored predictions; `ready=False` before the first migration.

    Reads only: a store the app looks at is never migrated or created by looking. Two index
    seeks, no count (counting a million rows costs a scan on Postgres).
    """
    try:
        with store.engine.connect() as conn:
            if not inspect(conn).has_table(PREDICTIONS.name):
                return StoreStatus(ready=False)
            row = conn.execute(
                select(
                    # Apart, each is one seek on the created_at index; together, a scan.
                    select(func.min(PREDICTIONS.c.created_at)).scalar_subquery(),
                    select(func.max(PREDICTIONS.c.created_at)).scalar_subquery(),
                )
            ).one()
    except SQLAlchemyError as exc:
        raise _fail("read its status", exc) from exc
    return StoreStatus(ready=True, first=row[0], last=row[1])


@dataclass(frozen=True)
class DailyVolume:
    """Stored predictions per UTC day."""

    days: list[str] = field(default_factory=list)
    n: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.n)


def daily_volume(
    store: PredictionStore,
    *,
    since: datetime,
    until: datetime | None = None,
    model_name: str | None = None,
) -> DailyVolume:
    """Predictions per UTC day from `since`'s day to `until` (default now), zero days included.

    One range count per day, all in one statement: each is a seek and a walk on the
    (model_name, created_at) index, so a million rows are counted without reading one of them
    (a GROUP BY on the day text computed per row took 6x longer on SQLite). Scores and labels
    per day come from the monitor's stored summaries (`monitoring.history.period_activity`).
    """
    p = PREDICTIONS
    first = to_utc(since).date()
    last = to_utc(until or datetime.now(UTC)).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    counts: list[int] = []
    for chunk in range(0, len(days), COMPOUND_LIMIT):
        parts = []
        for day in days[chunk : chunk + COMPOUND_LIMIT]:
            start = datetime.combine(day, time.min, tzinfo=UTC)
            stmt = (
                select(func.count())
                .select_from(p)
                .where(p.c.created_at >= start, p.c.created_at < start + timedelta(days=1))
            )
            if model_name is not None:
                stmt = stmt.where(p.c.model_name == model_name)
            parts.append(stmt)
        try:
            with store.engine.connect() as conn:
                counts += [int(n) for (n,) in conn.execute(union_all(*parts)).all()]
        except SQLAlchemyError as exc:
            raise _fail("count predictions by day", exc) from exc
    return DailyVolume(days=[d.isoformat() for d in days], n=counts)


def _numeric_feature(store: PredictionStore, name: str) -> ColumnElement[float]:
    """A feature from the JSON column as a number; NULL when missing or not a number."""
    element = PREDICTIONS.c.features[name]
    if store.dialect == "postgresql":
        kind = func.jsonb_typeof(element)
        return case((kind == "number", element.as_float()), else_=None)
    kind = func.json_type(PREDICTIONS.c.features, literal(f'$."{name}"'))
    return case((kind.in_(("integer", "real")), element.as_float()), else_=None)


@dataclass(frozen=True)
class NumericCounts:
    """Values of one numeric feature: `at_or_below[i]` counts values <= edges[i]."""

    n_rows: int
    n_values: int
    edges: list[float]
    at_or_below: list[int]

    def bin_counts(self) -> list[int]:
        """Counts per bin (-inf, e0], (e0, e1], ..., (e_last, inf): the reference's bins."""
        cumulative = [0, *self.at_or_below, self.n_values]
        return [int(b - a) for a, b in itertools.pairwise(cumulative)]


def numeric_feature_counts(
    store: PredictionStore,
    name: str,
    edges: Sequence[float],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model_name: str | None = None,
) -> NumericCounts:
    """How many stored values of feature `name` fall at or below each edge (one scan)."""
    value = _numeric_feature(store, name)
    columns: list[Any] = [func.count(), func.count(value)]
    columns += [func.sum(case((value <= float(edge), 1), else_=0)) for edge in edges]
    stmt = _window(select(*columns), PREDICTIONS.c.created_at, since, until)
    if model_name is not None:
        stmt = stmt.where(PREDICTIONS.c.model_name == model_name)
    try:
        with store.engine.connect() as conn:
            row = conn.execute(stmt).one()
    except SQLAlchemyError as exc:
        raise _fail(f"count values of {name!r}", exc) from exc
    return NumericCounts(
        n_rows=int(row[0]),
        n_values=int(row[1]),
        edges=[float(e) for e in edges],
        at_or_below=[int(v or 0) for v in row[2:]],
    )


def category_feature_counts(
    store: PredictionStore,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model_name: str | None = None,
) -> dict[str | None, int]:
    """Stored values of feature `name` as text -> count (None: missing or JSON null)."""
    element = PREDICTIONS.c.features[name].as_string()
    stmt = _window(
        select(element.label("value"), func.count().label("n")),
        PREDICTIONS.c.created_at,
        since,
        until,
    )
    if model_name is not None:
        stmt = stmt.where(PREDICTIONS.c.model_name == model_name)
    stmt = stmt.group_by(element)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise _fail(f"count values of {name!r}", exc) from exc
    counts: dict[str | None, int] = {}
    for value, n in rows:
        key = None if value is None else str(value)
        counts[key] = counts.get(key, 0) + int(n)
    return counts
