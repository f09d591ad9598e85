"""Fairness numbers against a hand-computed example, and the limits that flag them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.settings import FairnessLimits
from churnops.validation.fairness import check_fairness, fairness_differences, group_rates

# Group a: 4 rows, y = 1 1 0 0, decisions 1 0 1 0 -> selection 2/4, TPR 1/2, FPR 1/2.
# Group b: 4 rows, y = 1 1 0 0, decisions 1 1 1 1 -> selection 4/4, TPR 2/2, FPR 2/2.
# Group c: 2 rows, y = 1 0,     decisions 0 0     -> selection 0/2, TPR 0/1, FPR 0/1.
GROUPS = pd.Series(list("aaaabbbbcc"))
Y = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1, 0])
DECISION = np.array([1, 0, 1, 0, 1, 1, 1, 1, 0, 0])


def test_differences_match_the_hand_computed_definitions() -> None:
    found = fairness_differences(GROUPS, Y, DECISION)
    # Demographic parity difference: max - min selection rate = 1.0 - 0.0.
    assert found["demographic_parity_difference"] == pytest.approx(1.0)
    # Equalized odds difference: max(TPR gap, FPR gap) = max(1 - 0, 1 - 0).
    assert found["equalized_odds_difference"] == pytest.approx(1.0)
    # Without group c: selection 0.5 vs 1.0; TPR 0.5 vs 1.0; FPR 0.5 vs 1.0.
    kept = (GROUPS != "c").to_numpy()
    two = fairness_differences(GROUPS[kept], Y[kept], DECISION[kept])
    assert two["demographic_parity_difference"] == pytest.approx(0.5)
    assert two["equalized_odds_difference"] == pytest.approx(0.5)


def test_equalized_odds_takes_the_larger_of_the_two_gaps() -> None:
    groups = pd.Series(list("aaaabbbb"))
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    # a: TPR 1.0, FPR 0.0; b: TPR 0.5, FPR 0.0 -> TPR gap 0.5, FPR gap 0 -> 0.5.
    decision = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    found = fairness_differences(groups, y, decision)
    assert found["equalized_odds_difference"] == pytest.approx(0.5)
    assert found["demographic_parity_difference"] == pytest.approx(0.25)  # 2/4 vs 1/4


def test_group_rates_table() -> None:
    rows = {r.group: r for r in group_rates("g", GROUPS, Y, DECISION)}
    assert rows["a"].selection_rate == 0.5 and rows["a"].true_positive_rate == 0.5
    assert rows["b"].false_positive_rate == 1.0 and rows["c"].rows == 2


def test_limits_flag_small_groups_are_left_out_and_per_column_limits_win() -> None:
    frame = pd.DataFrame({"g": GROUPS})
    outcome = check_fairness(
        frame,
        Y,
        DECISION,
        columns=["g"],
        limits=FairnessLimits(demographic_parity_difference=0.4, equalized_odds_difference=0.6),
        by_column={},
        min_group_size=3,  # group c (2 rows) is not judged
        bins=4,
    )
    verdict = {c.subject: (c.passed, c.value) for c in outcome.checks}
    assert verdict["g demographic_parity_difference"] == (False, 0.5)
    assert verdict["g equalized_odds_difference"] == (True, 0.5)
    assert [r.group for r in outcome.groups] == ["a", "b", "c"]  # every group is shown

    lenient = FairnessLimits(demographic_parity_difference=0.6, equalized_odds_difference=0.6)
    again = check_fairness(
        frame,
        Y,
        DECISION,
        columns=["g"],
        limits=FairnessLimits(),
        by_column={"g": lenient},
        min_group_size=3,
        bins=4,
    )
    assert all(c.passed for c in again.checks)


def test_one_group_only_is_a_note_not_a_check() -> None:
    outcome = check_fairness(
        pd.DataFrame({"g": ["a"] * 10}),
        Y,
        DECISION,
        columns=["g"],
        limits=FairnessLimits(),
        by_column={},
        min_group_size=1,
        bins=4,
    )
    assert outcome.checks == [] and "fewer than 2 groups" in outcome.notes[0]
