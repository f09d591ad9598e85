"""Drift and data-quality decisions for a window summary against its reference.

Decisions use effect sizes, because with large windows every p-value is tiny; p-values are reported
beside them. The combining rule per feature (thresholds from `MonitoringSettings`):

* numeric: drift when PSI >= psi_drift or Jensen-Shannon >= js_drift (the issue's defaults).
  With `js_needs_wasserstein`, a JS hit must also move normalised Wasserstein past
  wasserstein_drift: the mass moved across the reference deciles (JS) AND moved far in units of the
  reference std. A pure reshuffle inside tiny ranges then no longer counts, and a handful of
  extreme values (which inflate Wasserstein alone) stays an out-of-range quality issue.
* categorical (and binary): drift when PSI >= psi_drift or Jensen-Shannon >= js_drift.
* warning: not drift, but PSI >= psi_warning or any single distance crossed its drift threshold.

Dataset drift: the share of drifted features is at least `dataset_drift_share`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from churnops.data.schema import MISSING_CATEGORY
from churnops.monitoring import stats
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import CategoricalSummary, NumericSummary, WindowSummary
from churnops.settings import RISK_LEVELS, MonitoringSettings

Status = Literal["ok", "warning", "drift", "no_data"]
NULL_RATE_TOLERANCE = 0.05  # absolute rise in null rate that counts as a quality issue
OUT_OF_RANGE_TOLERANCE = 0.01  # share of values outside the training range that is an issue
UNSEEN_TOLERANCE = 0.0  # any unseen category is reported
RULE = (
    "numeric: PSI >= psi_drift or JS >= js_drift (with js_needs_wasserstein: JS only together "
    "with normalised Wasserstein >= wasserstein_drift); "
    "categorical: PSI >= psi_drift or JS >= js_drift; dataset: share drifted >= dataset_drift_share"
)


class Thresholds(BaseModel):
    """The thresholds a report was decided with, kept inside it for reproducibility."""

    psi_warning: float
    psi_drift: float
    js_drift: float
    wasserstein_drift: float
    dataset_drift_share: float
    js_needs_wasserstein: bool = False

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> Thresholds:
        return cls(
            psi_warning=settings.psi_warning,
            psi_drift=settings.psi_drift,
            js_drift=settings.js_drift,
            wasserstein_drift=settings.wasserstein_drift,
            dataset_drift_share=settings.dataset_drift_share,
            js_needs_wasserstein=settings.js_needs_wasserstein,
        )


class FeatureDrift(BaseModel):
    """Drift figures and the decision for one feature."""

    feature: str
    kind: Literal["numeric", "categorical"]
    n_current: int
    psi: float
    js_distance: float
    wasserstein_norm: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    reference_mean: float | None = None
    current_mean: float | None = None
    status: Status
    reasons: list[str] = Field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return self.status == "drift"


class DriftReport(BaseModel):
    """Per-feature drift and the dataset-level decision."""

    features: list[FeatureDrift]
    n_features: int
    n_drifted: int
    share_drifted: float
    dataset_drift: bool
    thresholds: Thresholds
    rule: str = RULE

    def feature(self, name: str) -> FeatureDrift:
        for item in self.features:
            if item.feature == name:
                return item
        raise KeyError(name)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class PredictionDrift(BaseModel):
    """Score distribution and risk-level shares against the reference scores."""

    n_current: int
    psi: float
    js_distance: float
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float
    reference_mean: float
    current_mean: float
    reference_positive_rate: float
    current_positive_rate: float
    risk_shares_reference: dict[str, float]
    risk_shares_current: dict[str, float]
    risk_psi: float
    status: Status
    reasons: list[str] = Field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return self.status == "drift"


class FeatureQuality(BaseModel):
    """Nulls, unseen categories and training-range breaches of one feature."""

    feature: str
    n_rows: int
    null_rate_reference: float
    null_rate_current: float
    invalid_count: int = 0
    out_of_range_share: float = 0.0
    below_range: int = 0
    above_range: int = 0
    unseen_share: float = 0.0
    unseen_examples: list[str] = Field(default_factory=list)
    issues: list[str] = Field(default_factory=list)


class DataQualityReport(BaseModel):
    features: list[FeatureQuality]

    @property
    def has_issues(self) -> bool:
        return any(f.issues for f in self.features)

    @property
    def issues(self) -> list[str]:
        return [f"{f.feature}: {issue}" for f in self.features for issue in f.issues]


def _decide(
    *, psi: float, js: float, wasserstein: float | None, thresholds: Thresholds
) -> tuple[Status, list[str]]:
    reasons: list[str] = []
    if psi >= thresholds.psi_drift:
        reasons.append(f"PSI {psi:.3f} >= {thresholds.psi_drift}")
    js_hit = js >= thresholds.js_drift
    w_hit = wasserstein is not None and wasserstein >= thresholds.wasserstein_drift
    if js_hit:
        reasons.append(f"JS {js:.3f} >= {thresholds.js_drift}")
    if w_hit:
        reasons.append(f"Wasserstein {wasserstein:.3f} >= {thresholds.wasserstein_drift}")
    # The issue's rule is PSI or JS; optionally a numeric JS hit must be confirmed by Wasserstein
    # (a few far outliers move JS but barely move mass: they are an out-of-range quality issue).
    needs_w = thresholds.js_needs_wasserstein and wasserstein is not None
    distance_drift = js_hit and (w_hit or not needs_w)
    if psi >= thresholds.psi_drift or distance_drift:
        return "drift", reasons
    if psi >= thresholds.psi_warning:
        reasons.append(f"PSI {psi:.3f} >= {thresholds.psi_warning} (warning)")
    return ("warning" if reasons else "ok"), reasons


def _category_vectors(
    reference: dict[str, int], current: CategoricalSummary
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Aligned counts over the union of categories, nulls left out (they are a quality matter)."""
    names = sorted((set(reference) | set(current.counts)) - {MISSING_CATEGORY})
    ref = np.array([reference.get(n, 0) for n in names], dtype=float)
    cur = np.array([current.counts.get(n, 0) for n in names], dtype=float)
    return names, ref, cur


def _numeric_drift(
    name: str,
    numeric: NumericSummary,
    reference: MonitoringReference,
    thresholds: Thresholds,
    *,
    p_values: bool,
) -> FeatureDrift:
    ref = reference.profile.numeric[name]
    if numeric.n == 0:
        return FeatureDrift(
            feature=name,
            kind="numeric",
            n_current=0,
            psi=0.0,
            js_distance=0.0,
            reference_mean=ref.mean,
            status="no_data",
        )
    grid = reference.grids[name]
    ref_bins = np.asarray(ref.bin_counts, float)
    cur_bins = np.asarray(numeric.bin_counts, float)
    psi = stats.psi(ref_bins, cur_bins)
    js = stats.js_distance(ref_bins, cur_bins)
    wass = stats.wasserstein_normed(grid, numeric.grid, ref.std)
    ks = stats.ks_statistic(grid, numeric.grid)
    n_ref = round(ref.count * (1.0 - ref.null_rate))
    status, reasons = _decide(psi=psi, js=js, wasserstein=wass, thresholds=thresholds)
    return FeatureDrift(
        feature=name,
        kind="numeric",
        n_current=numeric.n,
        psi=psi,
        js_distance=js,
        wasserstein_norm=wass,
        ks_statistic=ks,
        ks_pvalue=stats.ks_pvalue(ks, n_ref, numeric.n) if p_values else None,
        reference_mean=ref.mean,
        current_mean=numeric.mean,
        status=status,
        reasons=reasons,
    )


def _categorical_drift(
    name: str,
    categorical: CategoricalSummary,
    reference: MonitoringReference,
    thresholds: Thresholds,
    *,
    p_values: bool,
) -> FeatureDrift:
    _, ref_counts, cur_counts = _category_vectors(
        reference.profile.categorical[name].frequencies, categorical
    )
    n_current = int(cur_counts.sum())
    if n_current == 0:
        return FeatureDrift(
            feature=name,
            kind="categorical",
            n_current=0,
            psi=0.0,
            js_distance=0.0,
            status="no_data",
        )
    psi = stats.psi(ref_counts, cur_counts)
    js = stats.js_distance(ref_counts, cur_counts)
    chi2, chi2_p = stats.chi_square(ref_counts, cur_counts) if p_values else (None, None)
    status, reasons = _decide(psi=psi, js=js, wasserstein=None, thresholds=thresholds)
    return FeatureDrift(
        feature=name,
        kind="categorical",
        n_current=n_current,
        psi=psi,
        js_distance=js,
        chi2_statistic=chi2,
        chi2_pvalue=chi2_p,
        status=status,
        reasons=reasons,
    )


def data_drift(
    summary: WindowSummary,
    reference: MonitoringReference,
    settings: MonitoringSettings,
    *,
    p_values: bool = True,
) -> DriftReport:
    """Per-feature drift of a window and whether the dataset as a whole drifted.

    `p_values=False` leaves the KS and chi-square p-values out (None): they never decide, and
    scipy's exact KS p-value costs milliseconds a feature, which a per-period series does not need.
    """
    thresholds = Thresholds.from_settings(settings)
    features = [
        _numeric_drift(name, numeric, reference, thresholds, p_values=p_values)
        for name, numeric in summary.numeric.items()
    ] + [
        _categorical_drift(name, categorical, reference, thresholds, p_values=p_values)
        for name, categorical in summary.categorical.items()
    ]
    judged = [f for f in features if f.status != "no_data"]
    n_drifted = sum(f.drifted for f in judged)
    share = n_drifted / len(judged) if judged else 0.0
    return DriftReport(
        features=features,
        n_features=len(judged),
        n_drifted=n_drifted,
        share_drifted=share,
        dataset_drift=bool(judged) and share >= thresholds.dataset_drift_share,
        thresholds=thresholds,
    )


def prediction_drift(
    summary: WindowSummary, reference: MonitoringReference, settings: MonitoringSettings
) -> PredictionDrift | None:
    """Score drift (PSI/JS on the 20-bin histogram, KS/Wasserstein on the quantile grid) and risk
    shares; None when the window or the reference has no scores."""
    ref = reference.profile.scores
    cur = summary.scores
    grid = reference.score_grid
    if ref is None or cur is None or grid is None or cur.n == 0:
        return None
    thresholds = Thresholds.from_settings(settings)
    ref_hist = np.asarray(ref.bin_counts, float)
    cur_hist = np.asarray(cur.hist, float)
    psi = stats.psi(ref_hist, cur_hist)
    js = stats.js_distance(ref_hist, cur_hist)
    ks = stats.ks_statistic(grid, cur.grid)
    levels = sorted(set(RISK_LEVELS) | set(ref.risk_shares) | set(cur.risk_counts))
    n_risk = sum(cur.risk_counts.values())
    cur_shares = {lvl: (cur.risk_counts.get(lvl, 0) / n_risk if n_risk else 0.0) for lvl in levels}
    ref_shares = {lvl: float(ref.risk_shares.get(lvl, 0.0)) for lvl in levels}
    risk_psi = (
        stats.psi(
            np.array([ref_shares[lvl] for lvl in levels]),
            np.array([cur_shares[lvl] for lvl in levels]),
        )
        if n_risk
        else 0.0
    )
    status, reasons = _decide(psi=psi, js=js, wasserstein=None, thresholds=thresholds)
    if risk_psi >= thresholds.psi_drift:
        status = "drift"
        reasons.append(f"risk-level PSI {risk_psi:.3f} >= {thresholds.psi_drift}")
    return PredictionDrift(
        n_current=cur.n,
        psi=psi,
        js_distance=js,
        ks_statistic=ks,
        ks_pvalue=stats.ks_pvalue(ks, ref.count, cur.n),
        wasserstein=stats.wasserstein(grid, cur.grid),
        reference_mean=ref.mean,
        current_mean=cur.total / cur.n,
        reference_positive_rate=ref.positive_rate,
        current_positive_rate=cur.predicted_positive / cur.n,
        risk_shares_reference=ref_shares,
        risk_shares_current=cur_shares,
        risk_psi=risk_psi,
        status=status,
        reasons=reasons,
    )


def _numeric_quality(
    name: str,
    numeric: NumericSummary,
    reference: MonitoringReference,
    *,
    null_rate_tolerance: float,
    out_of_range_tolerance: float,
) -> FeatureQuality:
    ref = reference.profile.numeric[name]
    null_rate = numeric.nulls / numeric.n_rows if numeric.n_rows else 0.0
    outside = numeric.below_range + numeric.above_range
    share = outside / numeric.n if numeric.n else 0.0
    issues: list[str] = []
    if null_rate - ref.null_rate > null_rate_tolerance:
        issues.append(f"null rate {null_rate:.1%} vs {ref.null_rate:.1%} in training")
    if numeric.invalid:
        issues.append(f"{numeric.invalid} non-numeric values")
    if share > out_of_range_tolerance:
        low, high = reference.training_range(name)
        issues.append(f"{share:.1%} of values outside the training range [{low:g}, {high:g}]")
    return FeatureQuality(
        feature=name,
        n_rows=numeric.n_rows,
        null_rate_reference=ref.null_rate,
        null_rate_current=null_rate,
        invalid_count=numeric.invalid,
        out_of_range_share=share,
        below_range=numeric.below_range,
        above_range=numeric.above_range,
        issues=issues,
    )


def _categorical_quality(
    name: str,
    categorical: CategoricalSummary,
    reference: MonitoringReference,
    *,
    null_rate_tolerance: float,
    max_examples: int,
) -> FeatureQuality:
    ref_cat = reference.profile.categorical[name]
    null_rate = categorical.nulls / categorical.n_rows if categorical.n_rows else 0.0
    unseen = {
        k: v
        for k, v in categorical.counts.items()
        if k not in ref_cat.frequencies and k != MISSING_CATEGORY
    }
    n_valued = categorical.n_rows - categorical.nulls
    unseen_share = sum(unseen.values()) / n_valued if n_valued else 0.0
    examples = [k for k, _ in sorted(unseen.items(), key=lambda kv: -kv[1])[:max_examples]]
    issues = []
    if null_rate - ref_cat.null_rate > null_rate_tolerance:
        issues.append(f"null rate {null_rate:.1%} vs {ref_cat.null_rate:.1%} in training")
    if unseen_share > UNSEEN_TOLERANCE:
        issues.append(f"{unseen_share:.1%} unseen categories, e.g. {', '.join(examples)}")
    return FeatureQuality(
        feature=name,
        n_rows=categorical.n_rows,
        null_rate_reference=ref_cat.null_rate,
        null_rate_current=null_rate,
        unseen_share=unseen_share,
        unseen_examples=examples,
        issues=issues,
    )


def data_quality(
    summary: WindowSummary,
    reference: MonitoringReference,
    *,
    null_rate_tolerance: float = NULL_RATE_TOLERANCE,
    out_of_range_tolerance: float = OUT_OF_RANGE_TOLERANCE,
    max_examples: int = 5,
) -> DataQualityReport:
    """Null rates against the reference, unseen categories (with examples), range breaches."""
    features = [
        _numeric_quality(
            name,
            numeric,
            reference,
            null_rate_tolerance=null_rate_tolerance,
            out_of_range_tolerance=out_of_range_tolerance,
        )
        for name, numeric in summary.numeric.items()
    ] + [
        _categorical_quality(
            name,
            categorical,
            reference,
            null_rate_tolerance=null_rate_tolerance,
            max_examples=max_examples,
        )
        for name, categorical in summary.categorical.items()
    ]
    return DataQualityReport(features=features)
