"""Champion vs challenger on live traffic, per variant: what `churnops deploy status`, the app's
Deployment page and the automatic steps all judge by.

Served rows come from `predictions` (their `variant`), shadow scores from `shadow_predictions`
(paired with the answer given by prediction_id), labels from `feedback`. Distances between the
two score distributions are monitoring's own PSI and Jensen-Shannon on ten equal-width bins;
quality figures carry bootstrap confidence intervals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.monitoring.stats import js_distance, psi
from churnops.settings import BusinessSettings
from churnops.store.deployment import SHADOWS, Policy
from churnops.store.models import FeedbackRow, PredictionRow
from churnops.store.store import PredictionStore

PREDICTIONS = PredictionRow.__table__
FEEDBACK = FeedbackRow.__table__
MAX_ROWS = 200_000  # newest rows per variant a comparison reads
MAX_BOOTSTRAP_ROWS = 20_000
SCORE_BINS = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class VariantStats:
    variant: str
    model_version: str | None
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None
    mean_probability: float | None
    churn_rate: float | None
    labels: int
    roc_auc: Estimate | None = None
    pr_auc: Estimate | None = None
    brier: Estimate | None = None
    profit: Estimate | None = None  # expected profit per customer (business settings complete)


@dataclass(frozen=True)
class Comparison:
    mode: str
    deployment_id: str
    variants: dict[str, VariantStats]
    paired: int = 0  # shadow: requests scored by both
    agreement: float | None = None  # shadow: same decision at each model's threshold
    psi: float | None = None
    js: float | None = None
    constant_challenger: bool = False
    score_counts: dict[str, list[int]] = field(default_factory=dict)  # ten bins per variant

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Rows:
    probability: np.ndarray
    will_churn: np.ndarray
    latency_us: np.ndarray  # NaN when unknown
    label: np.ndarray  # NaN when no label yet

    @classmethod
    def of(cls, rows: list[Any]) -> _Rows:
        if not rows:
            empty = np.zeros(0)
            return cls(empty, empty.astype(bool), empty, empty)
        data = np.array(
            [
                [
                    r[0],
                    float(bool(r[1])),
                    np.nan if r[2] is None else r[2],
                    np.nan if r[3] is None else r[3],
                ]
                for r in rows
            ],
            dtype=float,
        )
        return cls(data[:, 0], data[:, 1].astype(bool), data[:, 2], data[:, 3])


def _read(
    store: PredictionStore, policy: Policy, since: datetime
) -> tuple[dict[str, _Rows], list[Any]]:
    p, f, s = PREDICTIONS, FEEDBACK, SHADOWS
    served = {}
    try:
        with store.engine.connect() as conn:
            for variant in ("champion", "challenger"):
                stmt = (
                    select(p.c.churn_probability, p.c.will_churn, p.c.latency_us, f.c.label)
                    .select_from(p.outerjoin(f, f.c.prediction_id == p.c.prediction_id))
                    .where(p.c.model_name == policy.model_name)
                    .where(p.c.created_at >= since)
                    .where(p.c.source == "api")
                    .where(p.c.variant == variant)
                    .order_by(p.c.created_at.desc())
                    .limit(MAX_ROWS)
                )
                served[variant] = _Rows.of(list(conn.execute(stmt)))
            shadow_stmt = (
                select(
                    s.c.churn_probability,
                    s.c.will_churn,
                    s.c.latency_us,
                    f.c.label,
                    p.c.will_churn,
                )
                .select_from(
                    s.join(p, p.c.prediction_id == s.c.prediction_id).outerjoin(
                        f, f.c.prediction_id == s.c.prediction_id
                    )
                )
                .where(and_(s.c.model_name == policy.model_name, s.c.created_at >= since))
                .order_by(s.c.created_at.desc())
                .limit(MAX_ROWS)
            )
            shadows = list(conn.execute(shadow_stmt))
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot compare the deployment: {exc}") from exc
    return served, shadows


def _percentile_ms(latency_us: np.ndarray, q: float) -> float | None:
    known = latency_us[~np.isnan(latency_us)]
    return float(np.percentile(known, q) / 1000.0) if known.size else None


def _profit(y: np.ndarray, targeted: np.ndarray, business: BusinessSettings) -> float:
    value = float(business.value_retained or 0.0)
    cost = float(business.offer_cost or 0.0)
    success = float(business.offer_success_rate or 0.0)
    gain = np.where(y == 1, success * value - cost, -cost)
    return float((gain * targeted).mean())


QUALITY: tuple[str, ...] = ("roc_auc", "pr_auc", "brier", "profit")


def _quality(
    rows: _Rows,
    business: BusinessSettings,
    *,
    samples: int,
    wanted: tuple[str, ...] = QUALITY,
    seed: int = 0,
) -> dict[str, Estimate | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    known = ~np.isnan(rows.label)
    y = rows.label[known].astype(int)[:MAX_BOOTSTRAP_ROWS]
    p = rows.probability[known][:MAX_BOOTSTRAP_ROWS]
    t = rows.will_churn[known][:MAX_BOOTSTRAP_ROWS]
    out: dict[str, Estimate | None] = {
        "roc_auc": None,
        "pr_auc": None,
        "brier": None,
        "profit": None,
    }
    if y.size < 2 or not wanted:
        return out
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, y.size, y.size) for _ in range(samples)]

    def estimate(fn: Any, needs_both: bool) -> Estimate | None:
        if needs_both and len(np.unique(y)) < 2:
            return None
        values = []
        for idx in draws:
            if needs_both and len(np.unique(y[idx])) < 2:
                continue
            values.append(fn(y[idx], p[idx], t[idx]))
        if not values:
            return None
        low, high = np.percentile(values, [2.5, 97.5])
        return Estimate(float(fn(y, p, t)), float(low), float(high))

    if "roc_auc" in wanted:
        out["roc_auc"] = estimate(lambda yy, pp, _: roc_auc_score(yy, pp), True)
    if "pr_auc" in wanted:
        out["pr_auc"] = estimate(lambda yy, pp, _: average_precision_score(yy, pp), True)
    if "brier" in wanted:
        out["brier"] = estimate(lambda yy, pp, _: float(np.mean((pp - yy) ** 2)), False)
    if "profit" in wanted and business.complete:
        out["profit"] = estimate(lambda yy, _, tt: _profit(yy, tt, business), False)
    return out


def _stats(
    variant: str,
    version: str | None,
    rows: _Rows,
    errors: int,
    business: BusinessSettings,
    samples: int,
    quality: tuple[str, ...],
) -> VariantStats:
    n = int(rows.probability.size)
    attempts = n + errors
    return VariantStats(
        variant=variant,
        model_version=version,
        requests=n,
        errors=errors,
        error_rate=errors / attempts if attempts else 0.0,
        p50_ms=_percentile_ms(rows.latency_us, 50),
        p99_ms=_percentile_ms(rows.latency_us, 99),
        mean_probability=float(rows.probability.mean()) if n else None,
        churn_rate=float(rows.will_churn.mean()) if n else None,
        labels=int((~np.isnan(rows.label)).sum()),
        **_quality(rows, business, samples=samples, wanted=quality),
    )


def _histogram(probability: np.ndarray) -> np.ndarray:
    return np.histogram(np.clip(probability, 0.0, 1.0), bins=SCORE_BINS)[0]


def compare(
    store: PredictionStore,
    policy: Policy,
    *,
    business: BusinessSettings,
    bootstrap_samples: int = 200,
    constant_after: int = 50,
    since: datetime | None = None,
    quality: tuple[str, ...] = QUALITY,
) -> Comparison:
    """Everything known about the deployment's two variants since it started (or `since`);
    `quality` names the labelled figures to estimate (each costs a bootstrap)."""
    served, shadows = _read(store, policy, since or policy.started_at)
    champion = served["champion"]
    if policy.mode == "shadow" or (shadows and served["challenger"].probability.size == 0):
        challenger = _Rows.of([r[:4] for r in shadows])
        paired_decisions = np.array([bool(r[4]) for r in shadows], dtype=bool)
    else:
        challenger = served["challenger"]
        paired_decisions = np.zeros(0, dtype=bool)
    challenger_errors = policy.challenger_errors + policy.challenger_timeouts
    variants = {
        "champion": _stats(
            "champion",
            policy.champion_version,
            champion,
            policy.champion_errors,
            business,
            bootstrap_samples,
            quality,
        ),
        "challenger": _stats(
            "challenger",
            policy.challenger_version,
            challenger,
            challenger_errors,
            business,
            bootstrap_samples,
            quality,
        ),
    }
    agreement = None
    if paired_decisions.size:
        agreement = float(np.mean(paired_decisions == challenger.will_churn))
    counts = {
        "champion": _histogram(champion.probability),
        "challenger": _histogram(challenger.probability),
    }
    both = champion.probability.size and challenger.probability.size
    recent = challenger.probability[:constant_after]
    return Comparison(
        mode=policy.mode,
        deployment_id=policy.deployment_id,
        variants=variants,
        paired=int(paired_decisions.size),
        agreement=agreement,
        psi=psi(counts["champion"], counts["challenger"]) if both else None,
        js=js_distance(counts["champion"], counts["challenger"]) if both else None,
        # one score for every recent request while the champion's scores vary
        constant_challenger=bool(
            recent.size >= constant_after
            and float(np.ptp(recent)) == 0.0
            and champion.probability[:constant_after].size >= 2
            and float(np.ptp(champion.probability[:constant_after])) > 0.0
        ),
        score_counts={k: [int(x) for x in v] for k, v in counts.items()},
    )
