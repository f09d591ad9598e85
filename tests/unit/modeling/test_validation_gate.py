"""The promotion decision with validation: a blocking failure holds, an allowed one is named."""

from __future__ import annotations

from churnops.modeling.registry import promotion_decision


def _decide(**kwargs: object) -> tuple[bool, str]:
    base: dict[str, object] = {
        "candidate_score": 0.9,
        "champion_score": 0.8,
        "margin": 0.01,
        "leakage_flags": [],
        "allow_leakage": False,
    }
    decision = promotion_decision(**{**base, **kwargs})
    return decision.promote, decision.reason


def test_blocking_validation_failure_holds_even_a_better_model() -> None:
    promote, reason = _decide(validation_failures=["fairness sex: 0.3 > 0.1", "direction term: up"])
    assert not promote
    assert reason == "validation failed: fairness sex: 0.3 > 0.1; direction term: up"


def test_leakage_is_reported_before_validation() -> None:
    promote, reason = _decide(leakage_flags=["feature 'x'"], validation_failures=["fairness"])
    assert not promote and reason.startswith("leakage flagged")


def test_allowed_failures_promote_and_are_named_in_the_reason() -> None:
    promote, reason = _decide(validation_allowed=["fairness sex: 0.3 > 0.1"])
    assert promote and reason.endswith("(validation failures allowed: fairness sex: 0.3 > 0.1)")
    promote, reason = _decide(champion_score=None, validation_allowed=["direction term"])
    assert promote and reason == "no champion yet (validation failures allowed: direction term)"
    promote, reason = _decide(champion_score=0.95, validation_allowed=["direction term"])
    assert not promote and "does not beat" in reason


def test_no_validation_keeps_the_old_rules() -> None:
    assert _decide() == (True, "test_roc_auc 0.9000 beats champion 0.8000 by >= 0.01")
