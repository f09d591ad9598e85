"""Window summaries: chunked and merged equals whole, JSON round trip, category spelling."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.errors import ChurnopsError, DataValidationError
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import WindowSummary, category_text, merge_all
from tests.unit.monitoring.synthetic import make_customers, with_predictions


def test_merging_chunks_equals_summarising_all_at_once(reference: MonitoringReference) -> None:
    current = with_predictions(make_customers(9_000, seed=5))
    whole = WindowSummary.from_frame(current, reference)
    parts = [
        WindowSummary.empty(reference).update(c)
        for c in (current.iloc[i : i + 2_500] for i in range(0, 9_000, 2_500))
    ]
    merged = merge_all(parts)
    assert _close(merged, whole)
    streamed = WindowSummary.from_frame(current, reference, chunk_size=1_000)
    assert streamed.numeric["monthly_charges"].grid.le == whole.numeric["monthly_charges"].grid.le
    assert whole.n_rows == 9_000
    assert whole.performance is not None and whole.performance.n_labelled == 9_000


def _close(a: WindowSummary, b: WindowSummary) -> bool:
    for name in a.numeric:
        assert a.numeric[name].grid.le == b.numeric[name].grid.le
        assert a.numeric[name].bin_counts == b.numeric[name].bin_counts
        assert a.numeric[name].total == pytest.approx(b.numeric[name].total)
    assert a.categorical == b.categorical
    assert a.scores is not None and b.scores is not None
    assert a.scores.hist == b.scores.hist
    assert a.performance is not None and b.performance is not None
    assert a.performance.tp == b.performance.tp
    return True


def test_json_round_trip_and_reference_check(reference: MonitoringReference) -> None:
    current = with_predictions(make_customers(2_000, seed=6))
    summary = WindowSummary.from_frame(current, reference)
    loaded = WindowSummary.from_json(summary.to_json(), reference)
    assert loaded.numeric == summary.numeric
    loaded.update(current)  # a bound summary keeps streaming
    assert loaded.n_rows == 4_000

    other_profile = reference.profile.model_copy(update={"n_rows": 1})
    other = MonitoringReference(profile=other_profile)
    with pytest.raises(ChurnopsError):
        WindowSummary.from_json(summary.to_json(), other)
    with pytest.raises(ChurnopsError):
        summary.merge(WindowSummary.empty(other))


def test_missing_feature_is_a_validation_error(reference: MonitoringReference) -> None:
    current = make_customers(100, seed=2).drop(columns=["tenure"])
    with pytest.raises(DataValidationError, match="tenure"):
        WindowSummary.from_frame(current, reference)


def test_categories_are_spelled_as_in_the_reference(reference: MonitoringReference) -> None:
    assert category_text(1.0, {"0", "1"}) == "1"
    assert category_text(True, {"0", "1"}) == "1"
    assert category_text("Two year", {"Two year"}) == "Two year"
    # A 0/1 column that arrives as floats with nulls (as from a store) is not "unseen".
    current = make_customers(1_000, seed=3)
    current["female"] = current["female"].astype(float)
    current.loc[:9, "female"] = np.nan
    summary = WindowSummary.from_frame(current, reference)
    counts = summary.categorical["female"].counts
    assert set(counts) == {"0", "1", "(missing)"}
    assert summary.categorical["female"].nulls == 10


def test_numeric_counts_nulls_and_range(reference: MonitoringReference) -> None:
    current = make_customers(1_000, seed=4)
    current.loc[:49, "monthly_charges"] = 500.0
    current.loc[50:59, "monthly_charges"] = np.nan
    current["tenure"] = current["tenure"].astype(object)
    current.loc[0, "tenure"] = "n/a"
    summary = WindowSummary.from_frame(current, reference)
    charges = summary.numeric["monthly_charges"]
    assert charges.above_range == 50
    assert charges.nulls == 10
    assert charges.n == 990
    assert summary.numeric["tenure"].invalid == 1
