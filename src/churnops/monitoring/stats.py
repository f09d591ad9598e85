"""Drift statistics computed from counts, never from raw rows: pure functions over numpy arrays.

Binned statistics (PSI, Jensen-Shannon, chi-square) take two count vectors over the same bins.
KS and Wasserstein take a reference quantile grid and the current cumulative counts on it (see
`summary.GridCounts`), which reproduces the raw-sample figures to about 1/1000.
"""

from __future__ import annotations

import numpy as np
from scipy import special

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
    """Jensen-Shannon distance with base-2 logarithms, so it lies in [0, 1]."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    p, q = _shares(ref), _shares(cur)
    m = (p + q) / 2.0

    def _kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    divergence = 0.5 * _kl(p) + 0.5 * _kl(q)
    return float(np.sqrt(min(max(divergence, 0.0), 1.0)))


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table; unseen categories are just more columns.

    Returns (statistic, p-value); categories empty on both sides are dropped; one category: p=1.
    """
    table = np.vstack([np.asarray(reference_counts, float), np.asarray(current_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(special.chdtrc(dof, statistic))


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
    """Asymptotic two-sided p-value at the effective size en = n*m/(n+m).

    Uses the Kolmogorov limit with Stephens' small-sample correction, within ~5% (relative) of
    scipy's `kstwo.sf(D, en)` and without importing scipy.stats (seconds of start-up).
    """
    if n_reference <= 0 or n_current <= 0:
        return 1.0
    root = float(np.sqrt(n_reference * n_current / (n_reference + n_current)))
    return float(special.kolmogorov((root + 0.12 + 0.11 / root) * statistic))


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
