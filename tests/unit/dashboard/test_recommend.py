"""Recommendations come from the configured texts, chosen by level and by the reasons."""

from __future__ import annotations

from churnops.dashboard.recommend import recommend
from churnops.settings import RecommendationSettings

REASONS = [
    {"feature": "contract_length", "value": 1, "contribution": 0.4},
    {"feature": "support_calls", "value": 7, "contribution": 0.9},
    {"feature": "discount", "value": "yes", "contribution": -0.3},
]


def texts() -> RecommendationSettings:
    return RecommendationSettings(
        by_risk_level={"low": ["Keep going."], "high": ["Call them {today}."]},
        by_feature={"support_calls": "Fix the open tickets ({value} calls)."},
        reason_default="Review {feature}={value}.",
        max_reasons=2,
    )


def test_high_risk_gets_the_level_text_then_one_per_raising_reason() -> None:
    found = recommend(risk_level="high", reasons=REASONS, texts=texts())
    assert [item.text for item in found] == [
        "Call them {today}.",  # braces in a configured text are kept as they are
        "Fix the open tickets (7 calls).",
        "Review contract_length=1.",
    ]
    assert found[0].because == "risk level high"
    assert found[1].because == "support_calls = 7"


def test_low_risk_gets_only_the_level_text() -> None:
    found = recommend(risk_level="low", reasons=REASONS, texts=texts())
    assert [item.text for item in found] == ["Keep going."]


def test_default_texts_name_no_table_column() -> None:
    defaults = RecommendationSettings()
    found = recommend(risk_level="medium", reasons=REASONS[:1], texts=defaults)
    assert found[: len(defaults.by_risk_level["medium"])] == [
        item for item in found if item.because == "risk level medium"
    ]
    assert found[-1].text == "Look at contract_length (now 1): it adds the most to this risk."
    assert defaults.by_feature == {}
