"""Aggregations behind the EDA report: everything is reduced with numpy before it is plotted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.data.schema import MISSING_CATEGORY, Schema

MAX_CATEGORIES_SHOWN = 25  # beyond this the tail is folded into one "other" bar
HIST_BINS = 40
RATE_BINS = 10
TAIL_SPAN = 5.0  # full range this many times wider than the 1-99 % range means: clip the plot


@dataclass(frozen=True)
class TargetInfo:
    """Positive indicator and which rows have a known target."""

    positive: np.ndarray  # bool, False where unknown
    known: np.ndarray  # bool

    @property
    def n_known(self) -> int:
        return int(self.known.sum())

    @property
    def n_positive(self) -> int:
        return int(self.positive.sum())

    @property
    def positive_rate(self) -> float:
        return self.n_positive / self.n_known if self.n_known else float("nan")


def target_info(frame: pd.DataFrame, schema: Schema) -> TargetInfo:
    """Positive-class mask, robust to 0/1 labels read back as floats (1 vs 1.0)."""
    raw = frame[schema.target]
    known = raw.notna().to_numpy()
    positive = (raw.astype(str) == schema.positive_label).to_numpy()
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        try:
            label = float(schema.positive_label)
        except ValueError:
            pass
        else:
            positive = positive | (raw.to_numpy(dtype=float, na_value=np.nan) == label)
    return TargetInfo(positive=positive & known, known=known)


def category_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes per row and their labels as text; nulls get their own MISSING_CATEGORY code."""
    codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    labels = [str(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING_CATEGORY)
    return codes.astype(np.int64), labels


def category_table(series: pd.Series, target: TargetInfo) -> pd.DataFrame:
    """Count, share and positive rate per category, in sorted order; a long tail is folded."""
    codes, labels = category_codes(series)
    k = len(labels)
    count = np.bincount(codes, minlength=k)
    known = np.bincount(codes[target.known], minlength=k)
    positives = np.bincount(codes[target.positive], minlength=k)
    table = pd.DataFrame(
        {"category": labels, "count": count, "known": known, "positives": positives}
    )
    if len(table) > MAX_CATEGORIES_SHOWN:
        # too many to show in their natural order: largest first, the tail folded into one row
        table = table.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
        head = table.iloc[: MAX_CATEGORIES_SHOWN - 1]
        tail = table.iloc[MAX_CATEGORIES_SHOWN - 1 :]
        other = pd.DataFrame(
            {
                "category": [f"(other {len(tail)} categories)"],
                "count": [tail["count"].sum()],
                "known": [tail["known"].sum()],
                "positives": [tail["positives"].sum()],
            }
        )
        table = pd.concat([head, other], ignore_index=True)
    total = max(int(count.sum()), 1)
    table["share"] = table["count"] / total
    table["rate"] = np.where(
        table["known"] > 0, table["positives"] / table["known"].clip(lower=1), np.nan
    )
    return table


def numeric_values(series: pd.Series) -> np.ndarray:
    """Float array with NaN for nulls and for text that is not a number."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def histogram_edges(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Bin edges for a readable histogram, and how many values fall outside them (extreme tails)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([0.0, 1.0]), 0
    lo, hi = float(finite.min()), float(finite.max())
    p1, p99 = (float(v) for v in np.quantile(finite, [0.01, 0.99]))
    if p99 > p1 and hi - lo > TAIL_SPAN * (p99 - p1):
        lo, hi = p1, p99
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5]), 0
    distinct_ints = np.all(finite == np.round(finite)) and hi - lo + 1 <= HIST_BINS
    if distinct_ints:
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
    else:
        edges = np.linspace(lo, hi, HIST_BINS + 1)
    outside = int(((finite < edges[0]) | (finite > edges[-1])).sum())
    return edges, outside


def class_histograms(
    values: np.ndarray, target: TargetInfo, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram counts of the negative and the positive class over the same edges."""
    finite = np.isfinite(values)
    neg = np.histogram(values[finite & target.known & ~target.positive], bins=edges)[0]
    pos = np.histogram(values[finite & target.positive], bins=edges)[0]
    return neg, pos


def quantile_bin_codes(
    values: np.ndarray, n_bins: int = RATE_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Quantile bin per value (-1 for NaN) and the distinct edges used."""
    finite = values[np.isfinite(values)]
    codes = np.full(values.shape, -1, dtype=np.int64)
    if finite.size == 0:
        return codes, np.array([])
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    mask = np.isfinite(values)
    # bins are [e0, e1], (e1, e2], ...: searchsorted on the inner edges, left side
    codes[mask] = np.searchsorted(edges[1:-1], values[mask], side="left")
    return codes, edges


def rate_by_quantile(values: np.ndarray, target: TargetInfo) -> pd.DataFrame:
    """Count and positive rate per quantile bin of a numeric feature (plus a missing bucket)."""
    codes, edges = quantile_bin_codes(values)
    n = max(edges.size - 1, 0)
    labels = [f"{_short(edges[i])}–{_short(edges[i + 1])}" for i in range(n)]
    if (codes < 0).any():
        codes = np.where(codes < 0, n, codes)
        labels.append(MISSING_CATEGORY)
    k = len(labels)
    count = np.bincount(codes, minlength=k)
    known = np.bincount(codes[target.known], minlength=k)
    positives = np.bincount(codes[target.positive], minlength=k)
    rate = np.where(known > 0, positives / np.maximum(known, 1), np.nan)
    return pd.DataFrame({"bin": labels, "count": count, "positives": positives, "rate": rate})


def numeric_summary(
    values: np.ndarray, target: TargetInfo, *, negative: str, positive: str
) -> pd.DataFrame:
    """Count, missing, mean, std and quantiles for all rows and for each class."""
    groups = {
        "all rows": np.ones(values.shape, dtype=bool),
        negative: target.known & ~target.positive,
        positive: target.positive,
    }
    columns: dict[str, list[float]] = {}
    for name, mask in groups.items():
        part = values[mask]
        finite = part[np.isfinite(part)]
        stats = [float(part.size), float(part.size - finite.size)]
        if finite.size:
            q = np.quantile(finite, [0.0, 0.25, 0.5, 0.75, 1.0])
            stats += [float(finite.mean()), float(finite.std()), *map(float, q)]
        else:
            stats += [np.nan] * 7
        columns[name] = stats
    index = ["count", "missing", "mean", "std", "min", "25%", "median", "75%", "max"]
    return pd.DataFrame(columns, index=index)


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V between two integer-coded variables (codes from 0), from a bincount crosstab."""
    if a.size == 0:
        return float("nan")
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if r < 2 or c < 2:
        return 0.0
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(r, c) - 1))))


def association_codes(series: pd.Series, *, numeric: bool) -> np.ndarray:
    """Codes for Cramér's V: categories as they are, numbers in quantile bins (NaN its own bin)."""
    if not numeric:
        return category_codes(series)[0]
    codes, edges = quantile_bin_codes(numeric_values(series))
    return np.where(codes < 0, max(edges.size - 1, 0), codes)


def missing_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing count and share per column, all columns, worst first."""
    counts = frame.isna().sum()
    table = pd.DataFrame(
        {"column": [str(c) for c in counts.index], "missing": counts.to_numpy(dtype=np.int64)}
    )
    table["share"] = table["missing"] / max(len(frame), 1)
    return table.sort_values("missing", ascending=False, kind="stable").reset_index(drop=True)


def _short(value: float) -> str:
    return f"{value:,.4g}"
