"""Drift statistics computed from counts, never from raw rows: pure functions over numpy arrays.

Binned statistics (PSI, Jensen-Shannon, chi-square) take two count vectors over the same bins;
Jensen-Shannon, chi-square and the KS p-value are scipy's own on those counts. KS and Wasserstein
take a reference quantile grid and the current cumulative counts on it (see `summary.GridCounts`),
which reproduces scipy's raw-sample figures to about 1/1000 (scipy needs the raw samples).
"""

from __future__ import annotations

import numpy as np

from churnops.monitoring.reference import QuantileGrid
from churnops.monitoring.summary import GridCounts

PSI_EPSILON = 1e-4  # share given to an empty bin so PSI stays finite (Evidently uses the same)
MIN_STD = 1e-3  # floor of the reference std when normalising Wasserstein (as Evidently does)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def psi(
    reference_counts: np.ndarray, current_counts: np.ndarray, *, eps: float = PSI_EPSILON
) -> float:
    """Population stability index: sum of (cur - ref) * ln(cur / ref) over shares (empty: eps)."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    r = np.clip(_shares(ref), eps, None)
    c = np.clip(_shares(cur), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance with base-2 logarithms, so it lies in [0, 1]; 0 when a side is empty."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    from scipy.spatial.distance import jensenshannon  # scipy: ~0.7 s, only when checking

    return float(jensenshannon(ref, cur, base=2))


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table; unseen categories are just more columns.

    Returns (statistic, p-value); categories empty on both sides are dropped; one category: p=1.
    """
    table = np.vstack([np.asarray(reference_counts, float), np.asarray(current_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    from scipy import stats as sps

    result = sps.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _current_cdf(counts: GridCounts) -> tuple[np.ndarray, np.ndarray]:
    n = max(counts.n, 1)
    return np.asarray(counts.le, float) / n, np.asarray(counts.lt, float) / n


def ks_statistic(grid: QuantileGrid, counts: GridCounts) -> float:
    """Two-sample KS statistic: the largest CDF gap, checked at each grid point and just before it.

    Between grid points both CDFs are taken as linear, so the gap peaks at an end point; ties
    (jumps) are handled by the left limits. Error against raw samples: about 1/(len(quantiles)-1).
    """
    if counts.n == 0:
        return 0.0
    cur_at, cur_before = _current_cdf(counts)
    gaps = np.concatenate([np.abs(grid.cdf_at - cur_at), np.abs(grid.cdf_before - cur_before)])
    return float(gaps.max())


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided p-value as scipy's `ks_2samp(method="asymp")` gives it for this statistic."""
    if n_reference <= 0 or n_current <= 0:
        return 1.0
    effective_n = n_reference * n_current / (n_reference + n_current)
    size = max(np.round(effective_n), 1.0)  # 1 vs 1 rounds to 0, where kstwo has no answer
    from scipy import stats as sps

    return float(np.clip(sps.kstwo.sf(statistic, size), 0.0, 1.0))


def wasserstein(grid: QuantileGrid, counts: GridCounts) -> float:
    """Wasserstein-1 distance: the integral of |F_ref - F_cur|, exact outside the grid.

    Inside each interval both CDFs are linear, so |difference| integrates in closed form (with a
    sign change handled as two triangles).
    """
    if counts.n == 0:
        return 0.0
    n = counts.n
    u = grid.points
    cur_at, cur_before = _current_cdf(counts)
    below = (counts.lt[0] * u[0] - counts.sum_below) / n
    above = (counts.sum_above - (n - counts.le[-1]) * u[-1]) / n
    if u.size < 2:
        return float(max(below, 0.0) + max(above, 0.0))
    width = np.diff(u)
    d0 = grid.cdf_at[:-1] - cur_at[:-1]
    d1 = grid.cdf_before[1:] - cur_before[1:]
    a0, a1 = np.abs(d0), np.abs(d1)
    same_sign = d0 * d1 >= 0
    denominator = np.where(a0 + a1 > 0, a0 + a1, 1.0)
    area = np.where(same_sign, (a0 + a1) / 2.0, (d0 * d0 + d1 * d1) / (2.0 * denominator))
    inner = float(np.sum(width * area))
    return float(max(below, 0.0) + inner + max(above, 0.0))


def wasserstein_normed(grid: QuantileGrid, counts: GridCounts, reference_std: float) -> float:
    """Wasserstein distance divided by the reference std (Evidently's normed definition)."""
    return wasserstein(grid, counts) / max(reference_std, MIN_STD)
