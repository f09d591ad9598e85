"""Recommendations for one scored customer: by its risk level, then by the reasons raising it.

The texts live in settings (`app.recommendations` in params.yaml); nothing here knows a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churnops.dashboard.charts_scoring import reason_label
from churnops.settings import RecommendationSettings


@dataclass(frozen=True)
class Recommendation:
    text: str
    because: str  # "risk level high" or the reason that led to it


def _shown(value: Any) -> str:
    return reason_label("", value).removeprefix(" = ")


def recommend(
    *,
    risk_level: str,
    reasons: Sequence[Mapping[str, Any]],
    texts: RecommendationSettings,
) -> list[Recommendation]:
    """What to do: the level's texts, then one per risk-raising reason (not for low risk)."""
    found = [
        Recommendation(text, f"risk level {risk_level}")
        for text in texts.by_risk_level.get(risk_level, [])
    ]
    if risk_level == "low":
        return found
    raising = [r for r in reasons if float(r.get("contribution", 0.0)) > 0]
    raising.sort(key=lambda r: -float(r["contribution"]))
    seen = {item.text for item in found}
    for reason in raising[: texts.max_reasons]:
        feature = str(reason["feature"])
        template = texts.by_feature.get(feature, texts.reason_default)
        # Plain replacement: a stray brace in a configured text must not break the page.
        text = template.replace("{feature}", feature).replace(
            "{value}", _shown(reason.get("value"))
        )
        if text not in seen:
            seen.add(text)
            found.append(Recommendation(text, reason_label(feature, reason.get("value"))))
    return found
