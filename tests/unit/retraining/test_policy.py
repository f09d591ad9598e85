"""The retraining policy as pure functions: triggers, hysteresis, guards, keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from churnops.retraining.checks import WindowCheck
from churnops.retraining.policy import ChampionState, PolicyInputs, evaluate
from churnops.settings import RetrainingSettings

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def check(
    hours_ago: int, *, drift: bool = False, rows: int = 1000, version: str = "3", **kw: object
) -> WindowCheck:
    end = NOW - timedelta(hours=hours_ago)
    values = {
        "n_labelled": 0,
        "realised_drop": None,
        "estimated_drop": None,
        "realised_roc_auc": None,
        "estimated_roc_auc": None,
        "prediction_drift": False,
    } | kw
    return WindowCheck(
        id=hours_ago,
        created_at=end,
        window_end=end,
        n_rows=rows,
        dataset_drift=drift,
        model_version=version,
        **values,
    )


def inputs(
    checks: list[WindowCheck],
    *,
    started: list[datetime] = (),
    since_days: float = 1,
    labelled: int = 0,
    keys: frozenset[str] = frozenset(),
) -> PolicyInputs:
    champion = ChampionState("churn", "3", NOW - timedelta(days=since_days), 5000)
    return PolicyInputs(NOW, champion, checks, list(started), labelled, keys)


def test_one_drifted_window_is_noise_k_in_a_row_fire() -> None:
    settings = RetrainingSettings()
    assert (
        evaluate(inputs([check(1, drift=True), check(2), check(3, drift=True)]), settings).action
        == "none"
    )
    result = evaluate(
        inputs([check(1, drift=True), check(2, drift=True), check(3, drift=True)]), settings
    )
    assert result.action == "retrain"
    assert result.fire is not None and result.fire.name == "dataset_drift"
    assert (
        result.fire.key("churn")
        == f"retrain:churn:dataset_drift:{(NOW - timedelta(hours=1)).isoformat()}"
    )


def test_small_windows_and_other_models_checks_are_not_evidence() -> None:
    settings = RetrainingSettings()
    small = [check(h, drift=True, rows=50) for h in (1, 2, 3)]
    assert evaluate(inputs(small), settings).action == "none"
    older_model = [check(h, drift=True, version="2") for h in (1, 2, 3)]
    assert evaluate(inputs(older_model), settings).action == "none"


def test_realised_drop_needs_labels_else_the_estimate_speaks() -> None:
    settings = RetrainingSettings()
    few_labels = check(1, n_labelled=10, realised_drop=0.2, estimated_drop=0.01)
    assert evaluate(inputs([few_labels]), settings).action == "none"
    estimated = check(1, n_labelled=10, realised_drop=0.2, estimated_drop=0.08)
    fired = evaluate(inputs([estimated]), settings).fire
    assert fired is not None and fired.evidence["basis"] == "estimated"
    realised = check(1, n_labelled=500, realised_drop=0.06, estimated_drop=0.0)
    fired = evaluate(inputs([realised]), settings).fire
    assert (
        fired is not None and fired.name == "performance" and fired.evidence["basis"] == "realised"
    )


def test_age_and_new_labels_triggers() -> None:
    settings = RetrainingSettings()
    aged = evaluate(inputs([], since_days=31), settings).fire
    assert aged is not None and aged.name == "champion_age" and aged.window == "2026-11-30"
    labels = evaluate(inputs([], labelled=1100), settings).fire  # 22% of 5000
    assert labels is not None and labels.name == "new_labels" and labels.window == "v3-x1"
    assert evaluate(inputs([], labelled=900), settings).action == "none"


def test_guards_cooldown_and_monthly_budget_say_why() -> None:
    settings = RetrainingSettings()
    drifted = [check(h, drift=True) for h in (1, 2, 3)]
    cooling = evaluate(inputs(drifted, started=[NOW - timedelta(hours=5)]), settings)
    assert cooling.action == "skip" and cooling.fire is None
    assert cooling.blocked_by is not None and cooling.blocked_by.startswith(
        "cooldown: the last retraining started 5.0 h ago"
    )
    budget = [NOW - timedelta(days=d) for d in (2, 5, 9, 20)]
    spent = evaluate(inputs(drifted, started=budget), settings)
    assert spent.blocked_by == "limit: 4 retrainings in the last 30 days (max 4)"
    old = [NOW - timedelta(days=d) for d in (31, 40, 50, 60)]
    assert evaluate(inputs(drifted, started=old), settings).action == "retrain"


def test_a_window_already_acted_on_does_not_fire_again() -> None:
    settings = RetrainingSettings()
    drifted = [check(h, drift=True) for h in (1, 2, 3)]
    key = evaluate(inputs(drifted), settings).fire.key("churn")
    assert evaluate(inputs(drifted, keys=frozenset({key})), settings).action == "none"
