"""The current window of a monitoring run: its time bounds, and its rows gathered as summaries.

A window is built from any mix of frames (a file, or the prediction store read one day at a time)
and stored summaries (batch-scoring runs), split by day or week so the time series comes for free.
Nothing here writes anywhere; the CLI and the flows decide where a window comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnops.data.schema import Schema
from churnops.errors import ChurnopsError, ConfigError
from churnops.monitoring.monitor import MonitoringReport, report_from_summary
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import LABEL_COLUMN, TIME_COLUMN, WindowSummary, merge_all
from churnops.monitoring.temporal import Period, period_days, summarise_by_period
from churnops.settings import MonitoringSettings

if TYPE_CHECKING:
    from churnops.store.store import PredictionStore

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
STORE_SLICE = timedelta(days=1)  # the store is read one slice at a time: memory stays bounded


class EmptyWindowError(ChurnopsError):
    """The window holds no rows: nothing was compared, which is not the same as "no drift"."""


@dataclass(frozen=True)
class Window:
    """The half-open time range [start, end) of a monitoring run, in UTC."""

    start: datetime
    end: datetime

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `2w`, `90m` as a timedelta; anything else is a ConfigError."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(
            f"bad window {text!r}: use a number and a unit (m, h, d or w), e.g. 7d, 12h, 2w"
        )
    amount = float(match.group(1))
    if amount <= 0:
        raise ConfigError(f"bad window {text!r}: it must be longer than zero")
    return timedelta(**{_UNITS[match.group(2).lower()]: amount})


def parse_since(text: str) -> datetime:
    """An ISO date or date-time; a date means its midnight and a naive time is taken as UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"bad date {text!r}: use an ISO date or date-time, e.g. 2025-01-31 or "
            "2025-01-31T08:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def resolve_window(
    *, since: str | None, window: str | None, default_window: str, now: datetime | None = None
) -> Window:
    """[since, now) or [now - window, now); the configured default window when neither is given."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if since is not None and window is not None:
        raise ConfigError("give --since or --window, not both")
    if since is not None:
        start = parse_since(since)
        if start >= now:
            raise ConfigError(f"--since {since} is not in the past")
        return Window(start=start, end=now)
    return Window(start=now - parse_duration(window or default_window), end=now)


def period_key(moment: datetime, period: Period) -> str:
    """The ISO date of the day or week (Monday) `moment` falls in, as `summarise_by_period` keys."""
    day = int(period_days(pd.Series([moment]), period)[0])
    return str(np.datetime64(day, "D"))


def with_labels(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """`frame` with a `label` column taken from the target column when it has one and no labels."""
    if LABEL_COLUMN in frame.columns or schema.target not in frame.columns:
        return frame
    return frame.assign(**{LABEL_COLUMN: frame[schema.target]})


@dataclass
class WindowParts:
    """Summaries of everything in a window, by period when rows carry a time; merged on demand."""

    reference: MonitoringReference
    period: Period | None = "day"
    periods: dict[str, WindowSummary] = field(default_factory=dict)
    untimed: list[WindowSummary] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)  # rows per source, for the record

    @property
    def n_rows(self) -> int:
        return sum(s.n_rows for s in self.periods.values()) + sum(s.n_rows for s in self.untimed)

    @property
    def empty(self) -> bool:
        return self.n_rows == 0

    def _count(self, source: str, rows: int) -> None:
        self.sources[source] = self.sources.get(source, 0) + rows

    def _add_period(self, key: str, summary: WindowSummary) -> None:
        held = self.periods.get(key)
        self.periods[key] = summary if held is None else held.merge(summary)

    def add_frame(self, frame: pd.DataFrame, *, source: str = "frame") -> None:
        """Summarise rows (by period when they have `created_at` and a period is set)."""
        if frame.empty:
            return
        self._count(source, len(frame))
        if self.period is not None and TIME_COLUMN in frame.columns:
            for key, summary in summarise_by_period(
                frame, self.reference, period=self.period
            ).items():
                self._add_period(key, summary)
        else:
            self.untimed.append(WindowSummary.from_frame(frame, self.reference))

    def add_summary(self, summary: WindowSummary, *, source: str = "summary") -> None:
        """Add a stored summary; it must be bound to (built against) this reference."""
        summary.bind(self.reference)
        if summary.n_rows == 0:
            return
        self._count(source, summary.n_rows)
        if self.period is not None and summary.start is not None:
            self._add_period(period_key(summary.start, self.period), summary)
        else:
            self.untimed.append(summary)

    def merged(self) -> WindowSummary:
        if self.empty:
            raise EmptyWindowError("the window has no rows")
        return merge_all([self.periods[k] for k in sorted(self.periods)] + self.untimed)

    def report(self, settings: MonitoringSettings) -> tuple[MonitoringReport, WindowSummary]:
        """Drift, quality and performance of the whole window, with the per-period series."""
        summary = self.merged()
        periods = {k: v for k, v in self.periods.items() if v.n_rows} or None
        report = report_from_summary(
            summary, self.reference, settings=settings, periods=periods, period=self.period
        )
        return report, summary


def read_store_window(
    store: PredictionStore,
    parts: WindowParts,
    window: Window,
    *,
    model_name: str | None = None,
    slice_length: timedelta = STORE_SLICE,
) -> int:
    """Add the store's predictions in `window` to `parts`, one slice at a time; returns the rows."""
    total = 0
    start = window.start
    while start < window.end:
        end = min(start + slice_length, window.end)
        frame = store.read_predictions(since=start, until=end, model_name=model_name)
        if not frame.empty:
            parts.add_frame(frame, source="predictions")
            total += len(frame)
        start = end
    return total


@dataclass(frozen=True)
class BatchRunSummaries:
    """Population summaries of batch runs in a window: the ones merged and the ones left out."""

    summaries: list[tuple[int, WindowSummary]]
    skipped: dict[int, str]  # run id -> why it was left out


def batch_run_summaries(
    runs: Iterable[Any], reference: MonitoringReference, window: Window
) -> BatchRunSummaries:
    """Summaries of runs that started in `window` and were built against `reference`.

    `runs` are `store.BatchRun`s; a run without a summary, or one built against another reference
    profile (another model, or a `--reference` table), is skipped with the reason.
    """
    found: list[tuple[int, WindowSummary]] = []
    skipped: dict[int, str] = {}
    for run in runs:
        started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
        if not window.start <= started < window.end:
            continue
        if not run.profile:
            skipped[run.id] = "no population summary was recorded"
            continue
        try:
            summary = WindowSummary.model_validate(run.profile)
        except ValueError:
            skipped[run.id] = "its population summary is not readable"
            continue
        if summary.reference_fingerprint != reference.fingerprint:
            skipped[run.id] = "built against another reference profile"
            continue
        found.append((int(run.id), summary.bind(reference)))
    return BatchRunSummaries(summaries=found, skipped=skipped)
