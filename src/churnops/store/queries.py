"""Read-only aggregates of the prediction store, computed in the database (GROUP BY day).

What a dashboard needs over months of traffic (volume, score histogram, predicted and realised
churn per day, one feature's counts) without pulling rows into Python: a million predictions come
back as a few hundred grouped rows. Same SQL on SQLite and PostgreSQL; nothing here writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    func,
    inspect,
    literal,
    select,
    true,
)
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.models import to_utc
from churnops.store.store import FEEDBACK, PREDICTIONS, PredictionStore

SCORE_BINS = 10  # equal-width probability bins of the daily score histogram


def _fail(what: str, exc: SQLAlchemyError) -> StoreError:
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return StoreError(f"prediction store: cannot {what}: {lines[0] if lines else type(exc)}")


def day_of(column: Any, dialect: str) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column as 'YYYY-MM-DD' text, on either database."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps naive UTC text 'YYYY-MM-DD HH:MM:SS...'


def _bin_of(column: Any, dialect: str, bins: int) -> ColumnElement[int]:
    """Equal-width bin index of a probability (1.0 is clipped into the last bin by the caller)."""
    scaled = column * bins
    if dialect == "postgresql":
        return cast(func.floor(scaled), Integer)
    return cast(scaled, Integer)  # SQLite's CAST truncates, which is floor for p >= 0


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
    n_predictions: int = 0
    first: datetime | None = None
    last: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.n_predictions == 0


def store_status(store: PredictionStore) -> StoreStatus:
    """Counts and time span of the stored predictions; `ready=False` before the first migration.

    Reads only: a store the app looks at is never migrated or created by looking.
    """
    try:
        with store.engine.connect() as conn:
            if not inspect(conn).has_table(PREDICTIONS.name):
                return StoreStatus(ready=False)
            row = conn.execute(
                select(
                    func.count(),
                    func.min(PREDICTIONS.c.created_at),
                    func.max(PREDICTIONS.c.created_at),
                )
            ).one()
    except SQLAlchemyError as exc:
        raise _fail("read its status", exc) from exc
    return StoreStatus(ready=True, n_predictions=int(row[0]), first=row[1], last=row[2])


@dataclass(frozen=True)
class DailyActivity:
    """Predictions per UTC day: volume, mean score, predicted churners and a score histogram."""

    days: list[str]
    n: list[int]
    sum_probability: list[float]
    predicted_positive: list[int]
    flagged_probability: list[float]  # sum of the probabilities of the predicted churners
    histogram: list[list[int]]  # days x SCORE_BINS counts on equal-width bins of [0, 1]
    bins: int = SCORE_BINS

    @property
    def total(self) -> int:
        return sum(self.n)

    @property
    def mean_probability(self) -> list[float | None]:
        return [s / n if n else None for s, n in zip(self.sum_probability, self.n, strict=True)]

    @property
    def predicted_rate(self) -> list[float | None]:
        return [p / n if n else None for p, n in zip(self.predicted_positive, self.n, strict=True)]


def daily_activity(
    store: PredictionStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model_name: str | None = None,
    bins: int = SCORE_BINS,
) -> DailyActivity:
    """One GROUP BY day, score bin over the predictions in [since, until)."""
    p = PREDICTIONS
    day = day_of(p.c.created_at, store.dialect).label("day")
    score_bin = _bin_of(p.c.churn_probability, store.dialect, bins).label("bin")
    stmt = select(
        day,
        score_bin,
        func.count().label("n"),
        func.sum(p.c.churn_probability).label("sum_p"),
        func.sum(case((p.c.will_churn == true(), 1), else_=0)).label("positive"),
        func.sum(case((p.c.will_churn == true(), p.c.churn_probability), else_=0.0)).label(
            "flagged_p"
        ),
    ).where(p.c.churn_probability.is_not(None))
    stmt = _window(stmt, p.c.created_at, since, until)
    if model_name is not None:
        stmt = stmt.where(p.c.model_name == model_name)
    stmt = stmt.group_by(day, score_bin)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise _fail("count predictions by day", exc) from exc
    days = sorted({str(r.day) for r in rows})
    index = {d: i for i, d in enumerate(days)}
    n = np.zeros(len(days), dtype=np.int64)
    sum_p = np.zeros(len(days))
    positive = np.zeros(len(days), dtype=np.int64)
    flagged_p = np.zeros(len(days))
    hist = np.zeros((len(days), bins), dtype=np.int64)
    for r in rows:
        i = index[str(r.day)]
        n[i] += int(r.n)
        sum_p[i] += float(r.sum_p or 0.0)
        positive[i] += int(r.positive or 0)
        flagged_p[i] += float(r.flagged_p or 0.0)
        hist[i, min(max(int(r.bin), 0), bins - 1)] += int(r.n)
    return DailyActivity(
        days=days,
        n=n.tolist(),
        sum_probability=sum_p.tolist(),
        predicted_positive=positive.tolist(),
        flagged_probability=flagged_p.tolist(),
        histogram=hist.tolist(),
        bins=bins,
    )


@dataclass(frozen=True)
class DailyOutcomes:
    """Feedback labels per UTC day of the prediction they belong to, with the confusion counts
    at the decision each prediction was served with."""

    days: list[str] = field(default_factory=list)
    n_labelled: list[int] = field(default_factory=list)
    churned: list[int] = field(default_factory=list)
    tp: list[int] = field(default_factory=list)
    fp: list[int] = field(default_factory=list)
    fn: list[int] = field(default_factory=list)
    tn: list[int] = field(default_factory=list)

    @property
    def total_labelled(self) -> int:
        return sum(self.n_labelled)

    @property
    def churn_rate(self) -> list[float | None]:
        return [c / n if n else None for c, n in zip(self.churned, self.n_labelled, strict=True)]


def daily_outcomes(
    store: PredictionStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model_name: str | None = None,
) -> DailyOutcomes:
    """Labels joined to their predictions (from the feedback side: labels are the fewer rows)."""
    p, f = PREDICTIONS, FEEDBACK
    day = day_of(p.c.created_at, store.dialect).label("day")
    served = p.c.will_churn == true()
    churned = f.c.label == 1

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    stmt = (
        select(
            day,
            func.count().label("n"),
            count_if(churned).label("churned"),
            count_if(and_(served, churned)).label("tp"),
            count_if(and_(served, ~churned)).label("fp"),
            count_if(and_(~served, churned)).label("fn"),
            count_if(and_(~served, ~churned)).label("tn"),
        )
        .select_from(f.join(p, p.c.prediction_id == f.c.prediction_id))
        .group_by(day)
        .order_by(day)
    )
    stmt = _window(stmt, p.c.created_at, since, until)
    if model_name is not None:
        stmt = stmt.where(p.c.model_name == model_name)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise _fail("count feedback by day", exc) from exc
    return DailyOutcomes(
        days=[str(r.day) for r in rows],
        n_labelled=[int(r.n) for r in rows],
        churned=[int(r.churned or 0) for r in rows],
        tp=[int(r.tp or 0) for r in rows],
        fp=[int(r.fp or 0) for r in rows],
        fn=[int(r.fn or 0) for r in rows],
        tn=[int(r.tn or 0) for r in rows],
    )


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
