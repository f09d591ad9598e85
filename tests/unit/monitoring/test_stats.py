"""Statistics from counts agree with scipy on the raw samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from churnops.monitoring import stats
from churnops.monitoring.reference import QuantileGrid
from churnops.monitoring.summary import GridCounts


def _grid_counts(reference: np.ndarray, current: np.ndarray) -> tuple[QuantileGrid, GridCounts]:
    grid = QuantileGrid.from_quantiles(np.quantile(reference, np.linspace(0, 1, 1001)).tolist())
    counts = GridCounts.empty(grid.size)
    counts.add_sorted(np.sort(current), grid)
    return grid, counts


SAMPLES = {
    "continuous": lambda rng, n, s: rng.normal(65 + 30 * s, 30 * (1 + s / 3), n),
    "integer": lambda rng, n, s: np.floor(rng.integers(0, 73, n) * (1 + s / 4)),
    "zero-inflated": lambda rng, n, s: np.where(
        rng.random(n) < 0.3 + s / 5, 0.0, rng.exponential(100 * (1 + s), n)
    ),
}


@pytest.mark.parametrize("kind", list(SAMPLES))
@pytest.mark.parametrize("shift", [0.0, 0.3, 1.5])
def test_ks_and_wasserstein_match_scipy_on_raw_samples(kind: str, shift: float) -> None:
    rng = np.random.default_rng(7)
    reference = SAMPLES[kind](rng, 7_000, 0.0)
    current = SAMPLES[kind](rng, 100_000, shift)
    grid, counts = _grid_counts(reference, current)

    expected = sps.ks_2samp(reference, current)
    assert stats.ks_statistic(grid, counts) == pytest.approx(expected.statistic, abs=3e-3)
    w_expected = sps.wasserstein_distance(reference, current) / reference.std()
    w = stats.wasserstein_normed(grid, counts, float(reference.std()))
    assert w == pytest.approx(w_expected, abs=5e-3 + 0.02 * w_expected)


def test_ks_pvalue_is_scipys_asymptotic_two_sample_pvalue() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 7_000), rng.normal(0.03, 1, 20_000)
    expected = sps.ks_2samp(a, b, method="asymp")
    assert stats.ks_pvalue(expected.statistic, a.size, b.size) == pytest.approx(
        expected.pvalue, rel=1e-9
    )
    big = sps.ks_2samp(a, rng.normal(0.15, 1, 20_000), method="asymp")
    assert big.pvalue < 1e-10
    assert stats.ks_pvalue(big.statistic, a.size, 20_000) == pytest.approx(big.pvalue, rel=1e-9)
    # A one-row side still gets a p-value (scipy's effective size would round to 0 there).
    assert 0.0 <= stats.ks_pvalue(0.5, 1, 1) <= 1.0
    assert stats.ks_pvalue(0.5, 0, 10) == 1.0


def test_psi_and_js_basics_and_js_matches_scipy() -> None:
    ref = np.array([100, 200, 300, 400])
    assert stats.psi(ref, ref * 5) == pytest.approx(0.0, abs=1e-12)
    assert stats.js_distance(ref, ref * 5) == pytest.approx(0.0, abs=1e-7)
    cur = np.array([400, 300, 200, 100])
    assert stats.js_distance(ref, cur) == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)
    r, c = ref / ref.sum(), cur / cur.sum()
    assert stats.psi(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert stats.js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert stats.js_distance(np.array([0, 0]), np.array([3, 1])) == 0.0  # an empty side: no drift
    # An empty bin stays finite thanks to the epsilon.
    assert np.isfinite(stats.psi(np.array([10, 0]), np.array([5, 5])))


def test_chi_square_matches_scipy_with_an_unseen_category() -> None:
    ref = np.array([500, 300, 200, 0])  # the last category never occurred in training
    cur = np.array([5_000, 2_600, 2_300, 100])
    statistic, p_value = stats.chi_square(ref, cur)
    expected = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)
    assert stats.chi_square(np.array([10]), np.array([99])) == (0.0, 1.0)
    assert stats.chi_square(np.array([0, 0]), np.array([5, 7])) == (0.0, 1.0)  # no reference
    two = stats.chi_square(np.array([50, 50]), np.array([70, 30]))  # no Yates correction at 1 dof
    plain = sps.chi2_contingency(np.array([[50, 50], [70, 30]]), correction=False)
    assert two == pytest.approx((plain.statistic, plain.pvalue))
