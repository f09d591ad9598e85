"""The production gate as pure functions: paired bootstrap, Brier, profit, blocking reasons."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnops.retraining.gate import Scored, blocking_reasons, decide
from churnops.retraining.metrics import expected_profit, paired_bootstrap, roc_auc
from churnops.settings import BusinessSettings, PromotionGateSettings

RNG = np.random.default_rng(0)
Y = (RNG.random(2000) < 0.3).astype(np.int8)
GOOD = np.clip(0.3 + 0.35 * (Y - 0.3) + RNG.normal(0, 0.15, len(Y)), 0.01, 0.99)
NOISE = np.clip(RNG.random(len(Y)), 0.01, 0.99)


def scored(champion: np.ndarray, challenger: np.ndarray, name: str = "production") -> Scored:
    return Scored(name, Y, champion, challenger, 0.5, 0.5)


def test_rank_auc_matches_sklearn_with_ties() -> None:
    tied = np.round(GOOD, 1)
    assert roc_auc(Y, tied) == pytest.approx(roc_auc_score(Y, tied), abs=1e-12)


def test_paired_bootstrap_lower_bound_separates_better_from_equal() -> None:
    mean, lower = paired_bootstrap("roc_auc", Y, NOISE, GOOD, samples=200, confidence=0.95)
    assert mean > 0.3 and lower > 0.25
    _, lower_same = paired_bootstrap(
        "roc_auc", Y, GOOD, GOOD + RNG.normal(0, 1e-3, len(Y)), samples=200, confidence=0.95
    )
    assert lower_same <= 0


def test_better_challenger_passes_noise_is_rejected_with_every_reason() -> None:
    settings, business = PromotionGateSettings(bootstrap_samples=100), BusinessSettings()
    passed = decide(
        [scored(NOISE, GOOD), scored(NOISE, GOOD, "held_out")],
        settings=settings,
        business=business,
        blocking=[],
    )
    assert passed.passed and passed.primary == "production"
    rejected = decide([scored(GOOD, NOISE)], settings=settings, business=business, blocking=[])
    assert not rejected.passed
    text = " | ".join(rejected.reasons)
    assert (
        "not better by 0.002" in text and "paired bootstrap lower bound" in text and "Brier" in text
    )


def test_worse_on_the_held_out_split_blocks_even_when_production_wins() -> None:
    settings = PromotionGateSettings(bootstrap_samples=100)
    verdict = decide(
        [scored(NOISE, GOOD), scored(GOOD, NOISE, "held_out")],
        settings=settings,
        business=BusinessSettings(),
        blocking=[],
    )
    assert not verdict.passed and verdict.reasons[0].startswith("held_out: roc_auc")


def test_expected_profit_counts_when_business_values_are_set() -> None:
    business = BusinessSettings(value_retained=500, offer_cost=50, offer_success_rate=0.3)
    assert expected_profit(Y, GOOD, threshold=0.5, business=BusinessSettings()) is None
    everyone = expected_profit(Y, np.ones(len(Y)), threshold=0.5, business=business)
    assert everyone == pytest.approx(500 * 0.3 * Y.mean() - 50)
    # same ranking, but the challenger's threshold flags everyone: profit lower -> blocked
    settings = PromotionGateSettings(bootstrap_samples=50, margin=0.0)
    a = Scored("production", Y, GOOD, GOOD, 0.5, 0.0)
    verdict = decide([a], settings=settings, business=business, blocking=[])
    assert any("expected profit" in r for r in verdict.reasons)


def test_blocking_reasons_collect_leakage_schema_and_extra(trained_schema_pair: tuple) -> None:
    champion, challenger = trained_schema_pair
    reasons = blocking_reasons(
        leakage_flags=["feature x auc 0.99"],
        allow_leakage=False,
        champion_schema=champion,
        challenger_schema=challenger,
        extra=["validation: 3 rows failed"],
    )
    assert reasons[0] == "leakage flagged: feature x auc 0.99"
    assert any(r.startswith("schema: the challenger needs inputs") for r in reasons)
    assert reasons[-1] == "validation: 3 rows failed"
    assert (
        blocking_reasons(
            leakage_flags=["x"],
            allow_leakage=True,
            champion_schema=None,
            challenger_schema=challenger,
        )
        == []
    )


@pytest.fixture
def trained_schema_pair() -> tuple:
    import pandas as pd

    from churnops.data.schema import infer_schema
    from churnops.settings import DataSettings

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 5, "b": ["x", "y"] * 10, "t": [0, 1] * 10})
    settings = DataSettings(target="t")
    return infer_schema(frame.drop(columns="b"), settings), infer_schema(frame, settings)
