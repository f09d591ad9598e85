"""Monitoring over time, read back from what was stored: incidents, drift per feature per day,
estimated against realised performance, business value at the threshold, one feature's drill-down.

Every figure is one the monitor already decided and counted and stored (`monitoring_results`, one
series point per day), or a count the store aggregated in SQL (`store.queries`); nothing here
recomputes a statistic or reads a row. Incidents are
replayed with `alerts.conditions`, the rule the alert manager opens and closes them with.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from churnops.data.profile import ReferenceProfile
from churnops.data.schema import MISSING_CATEGORY
from churnops.monitoring.alerts import conditions
from churnops.monitoring.monitor import MonitoringReport
from churnops.monitoring.summary import category_text
from churnops.monitoring.temporal import PeriodPoint
from churnops.settings import BusinessSettings

if TYPE_CHECKING:  # monitoring reads what the store returns; it never imports the store itself
    from churnops.store.queries import NumericCounts
    from churnops.store.records import MonitoringResult


@dataclass(frozen=True)
class StoredCheck:
    """One stored monitoring run: when, over what window, what it found, which model it used."""

    id: int
    created_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    report: MonitoringReport
    model_name: str | None = None
    model_version: str | None = None


def stored_checks(results: Sequence[MonitoringResult]) -> list[StoredCheck]:
    """Stored results as reports, oldest first; rows that are not a full report are skipped."""
    checks: list[StoredCheck] = []
    for result in results:
        try:
            report = MonitoringReport.model_validate(result.summary)
        except ValidationError:
            continue  # another kind of result, or one written by an older version
        run: dict[str, Any] = result.summary.get("run") or {}
        checks.append(
            StoredCheck(
                id=int(result.id),
                created_at=result.created_at,
                window_start=result.window_start,
                window_end=result.window_end,
                report=report,
                model_name=run.get("model_name"),
                model_version=None
                if run.get("model_version") is None
                else str(run["model_version"]),
            )
        )
    return sorted(checks, key=lambda c: (c.created_at, c.id))


@dataclass(frozen=True)
class IncidentSpan:
    """One incident: the checks from the one it first held at to the one it stopped holding at."""

    kind: str
    opened_at: datetime
    resolved_at: datetime | None  # None: still open at the last check
    message: str  # as the alert said it at the last check it held
    checks: int

    @property
    def open(self) -> bool:
        return self.resolved_at is None


def incidents(checks: Sequence[StoredCheck]) -> list[IncidentSpan]:
    """Replay the stored checks through the alert rule: one span per incident, oldest first."""
    spans: list[IncidentSpan] = []
    running: dict[str, tuple[datetime, str, int]] = {}
    for check in checks:
        holding = conditions(check.report)
        for kind, (message, _) in holding.items():
            opened, _, count = running.get(kind, (check.created_at, message, 0))
            running[kind] = (opened, message, count + 1)
        for kind in [k for k in running if k not in holding]:
            opened, message, count = running.pop(kind)
            spans.append(IncidentSpan(kind, opened, check.created_at, message, count))
    spans += [IncidentSpan(k, o, None, m, c) for k, (o, m, c) in running.items()]
    return sorted(spans, key=lambda s: (s.opened_at, s.kind))


@dataclass(frozen=True)
class DriftMatrix:
    """PSI per feature (rows) and period (columns), with the thresholds the checks used."""

    features: list[str]
    periods: list[str]
    psi: list[list[float | None]]  # features x periods; None: no check covered that period
    drifted: list[list[bool]]  # the period's own decision for that feature
    psi_warning: float
    psi_drift: float

    @property
    def empty(self) -> bool:
        return not self.periods or not self.features


def drift_matrix(checks: Sequence[StoredCheck]) -> DriftMatrix | None:
    """Feature x period PSI from the checks' per-period series (each period from the check that
    saw most of it, see `latest_points`). None without any series."""
    points = latest_points(checks)
    if not points:
        return None
    thresholds = checks[-1].report.drift.thresholds
    periods = list(points)
    features = sorted({name for p in points.values() for name in p.feature_psi})
    psi = [[points[d].feature_psi.get(name) for d in periods] for name in features]
    drifted = [[name in points[d].drifted_features for d in periods] for name in features]
    return DriftMatrix(
        features=features,
        periods=periods,
        psi=psi,
        drifted=drifted,
        psi_warning=thresholds.psi_warning,
        psi_drift=thresholds.psi_drift,
    )


def latest_points(checks: Sequence[StoredCheck]) -> dict[str, PeriodPoint]:
    """Each period's figures from the check that saw most of it, the latest among equals.

    A window rarely starts at midnight, so its first day is partial; an earlier check saw that
    day whole. Among checks that saw a day whole, the latest has the most feedback labels.
    """
    points: dict[str, PeriodPoint] = {}
    for check in checks:  # oldest first: on equal rows a later check wins
        for point in check.report.series:
            held = points.get(point.period)
            if held is None or point.n_rows >= held.n_rows:
                points[point.period] = point
    return dict(sorted(points.items()))


@dataclass(frozen=True)
class PerformanceSeries:
    """ROC-AUC per period, estimated from the scores (all rows) and realised (labelled rows)."""

    periods: list[str] = field(default_factory=list)
    estimated_roc_auc: list[float | None] = field(default_factory=list)
    realised_roc_auc: list[float | None] = field(default_factory=list)
    n_labelled: list[int] = field(default_factory=list)
    training_roc_auc: float | None = None
    drop_limit: float | None = None


def performance_series(checks: Sequence[StoredCheck]) -> PerformanceSeries:
    """Per-period ROC-AUC from the checks' series and the training figure the latest check
    compared against."""
    points = latest_points(checks)
    training = None
    limit = None
    for check in reversed(checks):
        if check.report.performance is not None:
            training = check.report.performance.training.get("roc_auc")
            limit = check.report.performance.performance_drop
            break
    return PerformanceSeries(
        periods=list(points),
        estimated_roc_auc=[p.estimated_roc_auc for p in points.values()],
        realised_roc_auc=[p.realised_roc_auc for p in points.values()],
        n_labelled=[p.n_labelled for p in points.values()],
        training_roc_auc=training,
        drop_limit=limit,
    )


@dataclass(frozen=True)
class PeriodActivity:
    """Scores, decisions and labels per period, as the monitor counted them."""

    periods: list[str] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    mean_score: list[float | None] = field(default_factory=list)
    predicted_positive: list[int] = field(default_factory=list)
    flagged_probability: list[float] = field(default_factory=list)
    n_labelled: list[int] = field(default_factory=list)
    label_positive: list[int] = field(default_factory=list)
    fp: list[int] = field(default_factory=list)
    fn: list[int] = field(default_factory=list)
    score_hist: list[list[int]] = field(default_factory=list)  # periods x equal-width bins

    @property
    def flagged_rate(self) -> list[float | None]:
        return [p / n if n else None for p, n in zip(self.predicted_positive, self.n, strict=True)]

    @property
    def realised_rate(self) -> list[float | None]:
        pairs = zip(self.label_positive, self.n_labelled, strict=True)
        return [c / n if n else None for c, n in pairs]


def period_activity(checks: Sequence[StoredCheck]) -> PeriodActivity:
    """Per-period counts from the checks' series (each period as `latest_points` picks it)."""
    points = list(latest_points(checks).values())
    return PeriodActivity(
        periods=[p.period for p in points],
        n=[p.n_rows for p in points],
        mean_score=[p.mean_score for p in points],
        predicted_positive=[p.predicted_positive for p in points],
        flagged_probability=[p.flagged_probability for p in points],
        n_labelled=[p.n_labelled for p in points],
        label_positive=[p.label_positive for p in points],
        fp=[p.fp for p in points],
        fn=[p.fn for p in points],
        score_hist=[p.score_hist for p in points],
    )


@dataclass(frozen=True)
class BusinessValue:
    """Retention offers made at the served threshold, priced with the business settings.

    Expected value: each offer to a customer of churn probability p is worth
    p x success rate x value retained - offer cost (the profit `modeling.threshold` maximises).
    Realised costs, on labelled predictions: a false positive wastes an offer; a false negative
    loses the value an offer would have kept (success rate x value retained).
    """

    offers: int
    expected_value: float
    labelled: int
    false_positives: int
    false_negatives: int
    false_positive_cost: float
    false_negative_cost: float


def business_value(activity: PeriodActivity, business: BusinessSettings) -> BusinessValue | None:
    """Price the offers and the errors; None unless every business value is set."""
    if not business.complete:
        return None
    value = float(business.value_retained)  # type: ignore[arg-type]
    cost = float(business.offer_cost)  # type: ignore[arg-type]
    success = float(business.offer_success_rate)  # type: ignore[arg-type]
    offers = sum(activity.predicted_positive)
    fp, fn = sum(activity.fp), sum(activity.fn)
    return BusinessValue(
        offers=offers,
        expected_value=sum(activity.flagged_probability) * success * value - offers * cost,
        labelled=sum(activity.n_labelled),
        false_positives=fp,
        false_negatives=fn,
        false_positive_cost=fp * cost,
        false_negative_cost=fn * success * value,
    )


@dataclass(frozen=True)
class FeatureDistribution:
    """One feature's reference and current shares on the reference's own bins or categories."""

    feature: str
    kind: str  # "numeric" or "categorical"
    labels: list[str]
    reference: list[float]
    current: list[float]
    n_current: int


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def numeric_distribution(
    profile: ReferenceProfile, name: str, counts: NumericCounts
) -> FeatureDistribution:
    """Reference decile bins of a numeric feature against the window's counts on the same bins
    (the bins its PSI was computed on)."""
    edges = profile.numeric[name].bin_edges
    labels = [f"<= {edges[0]:g}"]
    labels += [f"{low:g} - {high:g}" for low, high in itertools.pairwise(edges)]
    labels.append(f"> {edges[-1]:g}")
    return FeatureDistribution(
        feature=name,
        kind="numeric",
        labels=labels,
        reference=_shares(profile.numeric[name].bin_counts),
        current=_shares(counts.bin_counts()),
        n_current=counts.n_values,
    )


def categorical_distribution(
    profile: ReferenceProfile, name: str, counts: dict[str | None, int], *, top: int = 20
) -> FeatureDistribution:
    """Reference against current category shares; categories training never saw are marked."""
    known = profile.categorical[name].frequencies
    current: dict[str, int] = {}
    for value, n in counts.items():
        key = MISSING_CATEGORY if value is None else category_text(value, known)
        current[key] = current.get(key, 0) + n
    current.pop(MISSING_CATEGORY, None)  # nulls are a quality matter, as in the drift decision
    names = sorted(set(known) | set(current), key=lambda k: -(known.get(k, 0) + current.get(k, 0)))
    names = [n for n in names if n != MISSING_CATEGORY][:top]
    ref_total = sum(v for k, v in known.items() if k != MISSING_CATEGORY)
    cur_total = sum(current.values())
    return FeatureDistribution(
        feature=name,
        kind="categorical",
        labels=[n if n in known else f"{n} (unseen)" for n in names],
        reference=[known.get(n, 0) / ref_total if ref_total else 0.0 for n in names],
        current=[current.get(n, 0) / cur_total if cur_total else 0.0 for n in names],
        n_current=cur_total,
    )
