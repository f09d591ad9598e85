"""Streaming, mergeable counts of a current window against a reference profile.

Every field is a count or a sum, so summaries of chunks, days, weeks or batch runs add up to the
summary of their union exactly: no sampling is needed, however large the window. A summary is plain
JSON; a batch-scoring run can store one per run and the monitor merges them later.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from churnops.data.schema import MISSING_CATEGORY
from churnops.errors import ChurnopsError, DataValidationError, Problem
from churnops.lazy import lazy_module
from churnops.monitoring.reference import MonitoringReference, QuantileGrid

if TYPE_CHECKING:
    import pandas as pd
else:  # frames only: the API never needs pandas
    pd = lazy_module("pandas")

PERF_BINS = 1000  # probability resolution of the performance histograms
TIME_COLUMN = "created_at"
PROBABILITY_COLUMN = "churn_probability"
PREDICTION_COLUMN = "will_churn"
RISK_COLUMN = "risk_level"
LABEL_COLUMN = "label"
_TRUE_TEXT = {"1", "1.0", "true", "yes", "y"}
_FALSE_TEXT = {"0", "0.0", "false", "no", "n"}


def _add(
    a: list[int] | list[float] | np.ndarray, b: list[int] | list[float] | np.ndarray
) -> list[Any]:
    added: list[Any] = (np.asarray(a) + np.asarray(b)).tolist()
    return added


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out


class GridCounts(BaseModel):
    """Cumulative counts of current values at each point u_j of a reference quantile grid.

    `le[j]` counts values <= u_j and `lt[j]` values < u_j (their difference is the ties at u_j);
    the sums outside the grid make the Wasserstein tails exact.
    """

    n: int = 0
    lt: list[int]
    le: list[int]
    sum_below: float = 0.0  # sum of values < u_0
    sum_above: float = 0.0  # sum of values > u_{m-1}

    @classmethod
    def empty(cls, size: int) -> GridCounts:
        return cls(lt=[0] * size, le=[0] * size)

    def add_sorted(self, values: np.ndarray, grid: QuantileGrid) -> None:
        """Count finite values that are already sorted (one sort serves every count)."""
        lt = np.searchsorted(values, grid.points, side="left")
        le = np.searchsorted(values, grid.points, side="right")
        self.n += int(values.size)
        self.lt = _add(self.lt, lt)
        self.le = _add(self.le, le)
        self.sum_below += float(values[: lt[0]].sum())
        self.sum_above += float(values[le[-1] :].sum())

    def merged(self, other: GridCounts) -> GridCounts:
        return GridCounts(
            n=self.n + other.n,
            lt=_add(self.lt, other.lt),
            le=_add(self.le, other.le),
            sum_below=self.sum_below + other.sum_below,
            sum_above=self.sum_above + other.sum_above,
        )


class NumericSummary(BaseModel):
    """Counts of one numeric feature: quantile grid, decile bins, nulls, range breaches."""

    n_rows: int = 0
    nulls: int = 0
    invalid: int = 0  # non-null values that are not numbers (counted in nulls too)
    grid: GridCounts
    bin_counts: list[int]
    below_range: int = 0
    above_range: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: float | None = None
    max: float | None = None

    def merged(self, other: NumericSummary) -> NumericSummary:
        mins = [v for v in (self.min, other.min) if v is not None]
        maxs = [v for v in (self.max, other.max) if v is not None]
        return NumericSummary(
            n_rows=self.n_rows + other.n_rows,
            nulls=self.nulls + other.nulls,
            invalid=self.invalid + other.invalid,
            grid=self.grid.merged(other.grid),
            bin_counts=_add(self.bin_counts, other.bin_counts),
            below_range=self.below_range + other.below_range,
            above_range=self.above_range + other.above_range,
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
        )

    @property
    def n(self) -> int:
        return self.grid.n

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def std(self) -> float | None:
        if not self.n:
            return None
        mean = self.total / self.n
        return float(np.sqrt(max(self.total_sq / self.n - mean * mean, 0.0)))


class CategoricalSummary(BaseModel):
    """Counts per category text (nulls under MISSING_CATEGORY), unseen categories included."""

    n_rows: int = 0
    nulls: int = 0
    counts: dict[str, int] = Field(default_factory=dict)

    def merged(self, other: CategoricalSummary) -> CategoricalSummary:
        return CategoricalSummary(
            n_rows=self.n_rows + other.n_rows,
            nulls=self.nulls + other.nulls,
            counts=_add_counts(self.counts, other.counts),
        )


class ScoreSummary(BaseModel):
    """Scores of the window: the reference's 20-bin histogram, its quantile grid and risk levels."""

    n: int = 0
    hist: list[int]
    grid: GridCounts
    risk_counts: dict[str, int] = Field(default_factory=dict)
    total: float = 0.0
    predicted_positive: int = 0

    def merged(self, other: ScoreSummary) -> ScoreSummary:
        return ScoreSummary(
            n=self.n + other.n,
            hist=_add(self.hist, other.hist),
            grid=self.grid.merged(other.grid),
            risk_counts=_add_counts(self.risk_counts, other.risk_counts),
            total=self.total + other.total,
            predicted_positive=self.predicted_positive + other.predicted_positive,
        )


class PerformanceCounts(BaseModel):
    """Sufficient statistics for realised metrics (labelled rows) and CBPE estimates (all rows).

    Probabilities are binned on PERF_BINS equal bins of [0, 1]; confusion counts, Brier sums and
    expected confusion sums are exact.
    """

    n: int = 0
    count: list[int] = Field(default_factory=lambda: [0] * PERF_BINS)
    sum_p: list[float] = Field(default_factory=lambda: [0.0] * PERF_BINS)
    expected_brier_sum: float = 0.0  # sum of p(1-p): the Brier score if p is calibrated
    pred_pos_n: int = 0
    pred_pos_sum_p: float = 0.0
    pred_neg_n: int = 0
    pred_neg_sum_p: float = 0.0
    n_labelled: int = 0
    pos: list[int] = Field(default_factory=lambda: [0] * PERF_BINS)
    neg: list[int] = Field(default_factory=lambda: [0] * PERF_BINS)
    labelled_sum_p: list[float] = Field(default_factory=lambda: [0.0] * PERF_BINS)
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    brier_sum: float = 0.0

    def add(self, probabilities: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> None:
        """Add rows: probabilities in [0, 1], predicted 0/1, labels 0/1 (NaN: not known yet)."""
        p = np.clip(probabilities, 0.0, 1.0)
        bins = np.minimum((p * PERF_BINS).astype(np.int64), PERF_BINS - 1)
        pred = predicted.astype(bool)
        self.n += int(p.size)
        self.count = _add(self.count, np.bincount(bins, minlength=PERF_BINS))
        self.sum_p = _add(self.sum_p, np.bincount(bins, weights=p, minlength=PERF_BINS))
        self.expected_brier_sum += float((p * (1.0 - p)).sum())
        self.pred_pos_n += int(pred.sum())
        self.pred_pos_sum_p += float(p[pred].sum())
        self.pred_neg_n += int((~pred).sum())
        self.pred_neg_sum_p += float(p[~pred].sum())
        known = ~np.isnan(labels)
        if not known.any():
            return
        y = labels[known].astype(bool)
        kp, kb, kpred = p[known], bins[known], pred[known]
        self.n_labelled += int(y.size)
        self.pos = _add(self.pos, np.bincount(kb[y], minlength=PERF_BINS))
        self.neg = _add(self.neg, np.bincount(kb[~y], minlength=PERF_BINS))
        self.labelled_sum_p = _add(
            self.labelled_sum_p, np.bincount(kb, weights=kp, minlength=PERF_BINS)
        )
        self.tp += int((kpred & y).sum())
        self.fp += int((kpred & ~y).sum())
        self.fn += int((~kpred & y).sum())
        self.tn += int((~kpred & ~y).sum())
        self.brier_sum += float(((kp - y) ** 2).sum())

    def merged(self, other: PerformanceCounts) -> PerformanceCounts:
        fields: dict[str, Any] = {}
        for name in type(self).model_fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            fields[name] = _add(mine, theirs) if isinstance(mine, list) else mine + theirs
        return PerformanceCounts(**fields)


class WindowSummary(BaseModel):
    """Everything monitoring needs from a window of current rows, as mergeable counts.

    Build with `WindowSummary.empty(reference)`, feed chunks with `update`, combine with `merge`.
    After loading from JSON, `bind(reference)` before updating again.
    """

    reference_fingerprint: str
    threshold: float
    n_rows: int = 0
    start: datetime | None = None
    end: datetime | None = None
    numeric: dict[str, NumericSummary] = Field(default_factory=dict)
    categorical: dict[str, CategoricalSummary] = Field(default_factory=dict)
    scores: ScoreSummary | None = None
    performance: PerformanceCounts | None = None
    _reference: MonitoringReference | None = PrivateAttr(default=None)

    @classmethod
    def empty(cls, reference: MonitoringReference) -> WindowSummary:
        profile = reference.profile
        summary = cls(
            reference_fingerprint=reference.fingerprint,
            threshold=reference.threshold,
            numeric={
                name: NumericSummary(
                    grid=GridCounts.empty(reference.grids[name].size),
                    bin_counts=[0] * (len(p.bin_edges) + 1),
                )
                for name, p in profile.numeric.items()
            },
            categorical={name: CategoricalSummary() for name in profile.categorical},
        )
        summary._reference = reference
        return summary

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, reference: MonitoringReference, *, chunk_size: int = 2_000_000
    ) -> WindowSummary:
        """Summary of a whole frame, in chunks so memory stays bounded on very large windows."""
        summary = cls.empty(reference)
        for start in range(0, max(len(frame), 1), chunk_size):
            summary.update(frame.iloc[start : start + chunk_size])
        return summary

    def bind(self, reference: MonitoringReference) -> WindowSummary:
        """Attach the reference (needed to update); refuses a different reference."""
        if reference.fingerprint != self.reference_fingerprint:
            raise ChurnopsError("this summary was built against a different reference profile")
        self._reference = reference
        return self

    @property
    def reference(self) -> MonitoringReference:
        if self._reference is None:
            raise ChurnopsError("summary is not bound to a reference; call bind(reference) first")
        return self._reference

    def update(self, chunk: pd.DataFrame) -> WindowSummary:
        """Add the rows of `chunk` (vectorised per column) and return self."""
        reference = self.reference
        missing = [c for c in (*self.numeric, *self.categorical) if c not in chunk.columns]
        if missing:
            raise DataValidationError(
                [
                    Problem(c, "feature of the reference profile is missing from the data")
                    for c in missing
                ]
            )
        self.n_rows += len(chunk)
        if chunk.empty:
            return self
        for name, numeric in self.numeric.items():
            self.numeric[name] = _update_numeric(numeric, chunk[name], name, reference)
        for name, categorical in self.categorical.items():
            known = reference.profile.categorical[name].frequencies
            self.categorical[name] = _update_categorical(categorical, chunk[name], known)
        if TIME_COLUMN in chunk.columns:
            times = pd.to_datetime(chunk[TIME_COLUMN], errors="coerce", utc=True).dropna()
            if not times.empty:
                low, high = times.min().to_pydatetime(), times.max().to_pydatetime()
                self.start = low if self.start is None else min(self.start, low)
                self.end = high if self.end is None else max(self.end, high)
        if PROBABILITY_COLUMN in chunk.columns:
            self._update_scores(chunk)
        return self

    def _update_scores(self, chunk: pd.DataFrame) -> None:
        reference = self.reference
        raw = pd.to_numeric(chunk[PROBABILITY_COLUMN], errors="coerce")
        p_all = raw.to_numpy(dtype=float, na_value=np.nan)
        scored = ~np.isnan(p_all)
        p = np.clip(p_all[scored], 0.0, 1.0)
        if PREDICTION_COLUMN in chunk.columns:
            predicted = _binary(chunk[PREDICTION_COLUMN], None, None)[scored]
            predicted = np.where(np.isnan(predicted), p >= self.threshold, predicted)
        else:
            predicted = (p >= self.threshold).astype(float)
        if LABEL_COLUMN in chunk.columns:
            labels = _binary(
                chunk[LABEL_COLUMN], reference.positive_label, reference.negative_label
            )
            labels = labels[scored]
        else:
            labels = np.full(p.size, np.nan)
        performance = self.performance or PerformanceCounts()
        performance.add(p, predicted, labels)
        self.performance = performance

        profile = reference.profile.scores
        edges = profile.bin_edges if profile is not None else np.linspace(0, 1, 21).tolist()
        grid = reference.score_grid or QuantileGrid.from_quantiles([0.0, 1.0])
        scores = self.scores or ScoreSummary(
            hist=[0] * (len(edges) - 1), grid=GridCounts.empty(grid.size)
        )
        hist, _ = np.histogram(p, bins=np.asarray(edges))
        scores.n += int(p.size)
        scores.hist = _add(scores.hist, hist)
        scores.grid.add_sorted(np.sort(p), grid)
        scores.total += float(p.sum())
        scores.predicted_positive += int(predicted.sum())
        if RISK_COLUMN in chunk.columns:
            risk = chunk[RISK_COLUMN][scored].value_counts(dropna=True)
            scores.risk_counts = _add_counts(
                scores.risk_counts, {str(k): int(v) for k, v in risk.items()}
            )
        self.scores = scores

    def merge(self, other: WindowSummary) -> WindowSummary:
        """The summary of both windows together (a new object; neither input changes)."""
        if other.reference_fingerprint != self.reference_fingerprint:
            raise ChurnopsError("cannot merge summaries built against different reference profiles")
        starts = [t for t in (self.start, other.start) if t is not None]
        ends = [t for t in (self.end, other.end) if t is not None]
        merged = WindowSummary(
            reference_fingerprint=self.reference_fingerprint,
            threshold=self.threshold,
            n_rows=self.n_rows + other.n_rows,
            start=min(starts) if starts else None,
            end=max(ends) if ends else None,
            numeric={k: v.merged(other.numeric[k]) for k, v in self.numeric.items()},
            categorical={k: v.merged(other.categorical[k]) for k, v in self.categorical.items()},
            scores=_merge_optional(self.scores, other.scores),
            performance=_merge_optional(self.performance, other.performance),
        )
        merged._reference = self._reference or other._reference
        return merged

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str, reference: MonitoringReference | None = None) -> WindowSummary:
        summary = cls.model_validate_json(text)
        return summary.bind(reference) if reference is not None else summary


def _merge_optional(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a.merged(b)


def merge_all(summaries: list[WindowSummary]) -> WindowSummary:
    """Merge a non-empty list of summaries."""
    if not summaries:
        raise ChurnopsError("nothing to merge")
    total = summaries[0]
    for summary in summaries[1:]:
        total = total.merge(summary)
    return total


def _update_numeric(
    summary: NumericSummary, series: pd.Series, name: str, reference: MonitoringReference
) -> NumericSummary:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        invalid = 0
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        invalid = int(np.isnan(values).sum() - series.isna().sum())
    finite = np.sort(values[~np.isnan(values)])
    summary.n_rows += int(values.size)
    summary.nulls += int(values.size - finite.size)
    summary.invalid += invalid
    if finite.size == 0:
        return summary
    summary.grid.add_sorted(finite, reference.grids[name])
    edges = np.asarray(reference.profile.numeric[name].bin_edges, dtype=float)
    cumulative = np.concatenate([[0], np.searchsorted(finite, edges, side="right"), [finite.size]])
    summary.bin_counts = _add(summary.bin_counts, np.diff(cumulative))
    low, high = reference.training_range(name)
    summary.below_range += int(np.searchsorted(finite, low, side="left"))
    summary.above_range += int(finite.size - np.searchsorted(finite, high, side="right"))
    summary.total += float(finite.sum())
    # Not np.dot: BLAS would wake its thread pool, whose threads then spin on both cores.
    summary.total_sq += float(np.square(finite).sum())
    first, last = float(finite[0]), float(finite[-1])
    summary.min = first if summary.min is None else min(summary.min, first)
    summary.max = last if summary.max is None else max(summary.max, last)
    return summary


def category_text(value: Any, known: dict[str, int] | set[str]) -> str:
    """Text of a category as the reference profile spells it (1.0 -> "1" when "1" is known)."""
    text = str(value)
    if text in known:
        return text
    candidates: list[str] = []
    integral = isinstance(value, float | np.floating) and float(value).is_integer()
    if isinstance(value, bool | np.bool_) or integral:
        candidates.append(str(int(value)))
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        candidates.append(str(bool(value)))
    for candidate in candidates:
        if candidate in known:
            return candidate
    return text


def _update_categorical(
    summary: CategoricalSummary, series: pd.Series, known: dict[str, int]
) -> CategoricalSummary:
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Counting codes is far cheaper than hashing values; zero counts kept as value_counts does.
        codes = np.asarray(series.cat.codes.to_numpy(), dtype=np.int64)
        tally = np.bincount(codes + 1, minlength=len(series.cat.categories) + 1)
        nulls = int(tally[0])
        counts = pd.Series(tally[1:], index=series.cat.categories)
    else:
        counts = series.value_counts(dropna=True, sort=False)
        nulls = int(series.isna().sum())
    found: dict[str, int] = {}
    for value, count in counts.items():
        key = category_text(value, known)
        found[key] = found.get(key, 0) + int(count)
    if nulls:
        found[MISSING_CATEGORY] = found.get(MISSING_CATEGORY, 0) + nulls
    summary.n_rows += len(series)
    summary.nulls += nulls
    summary.counts = _add_counts(summary.counts, found)
    return summary


def _binary(series: pd.Series, positive: str | None, negative: str | None) -> np.ndarray:
    """0/1 as floats, NaN where unknown; numbers, booleans and yes/no-style text are understood."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.astype(float).to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isnan(values), np.nan, (values > 0.5).astype(float))
    text = series.astype("string").str.strip()
    lowered = text.str.lower()
    out = np.full(len(series), np.nan)
    truthy = lowered.isin(_TRUE_TEXT).to_numpy(dtype=bool, na_value=False)
    falsy = lowered.isin(_FALSE_TEXT).to_numpy(dtype=bool, na_value=False)
    # Not in place: under copy-on-write pandas may hand back read-only arrays.
    if positive is not None:
        truthy = truthy | (text == positive).to_numpy(dtype=bool, na_value=False)
    if negative is not None:
        falsy = falsy | (text == negative).to_numpy(dtype=bool, na_value=False)
    out[falsy] = 0.0
    out[truthy] = 1.0
    return out
