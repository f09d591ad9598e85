"""Monitoring: alerts, drift per feature and day, volume and scores, performance, data quality,
one feature's drill-down, business value, and "Check now".

A Streamlit script (an entry point: settings are read here). Every figure comes from the monitor's
stored results (per-day series) or from the store's own GROUP BY on its index; first render never
reads a prediction row or loads a model.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from churnops.dashboard import charts_monitoring as charts
from churnops.dashboard import queries
from churnops.errors import ChurnopsError, RegistryError, StoreError
from churnops.monitoring.history import (
    StoredCheck,
    business_value,
    categorical_distribution,
    drift_matrix,
    incidents,
    numeric_distribution,
    performance_series,
    period_activity,
)
from churnops.settings import Settings, get_settings
from churnops.store.engine import safe_url

PERIODS = {7: "7 days", 30: "30 days", 90: "90 days"}
CHECK_WINDOWS = ("1d", "7d", "30d")
NO_PREDICTIONS = (
    "**No predictions yet** in the prediction store at `{url}`. Send some and they appear here: "
    "start the API (`churnops serve`, or `make run`) and POST customers to `/predict`, or score "
    "a file with `churnops predict --input customers.csv`. Then run `churnops monitor` (or "
    "*Check now* below) to record drift checks."
)


def _store_unreachable(url: str, exc: ChurnopsError) -> None:
    st.error(
        f"The prediction store at `{safe_url(url)}` cannot be read right now ({exc}). "
        "Check that the database is running and that `database_url` points at it; "
        "this page tries again on the next refresh."
    )


def _alerts(checks: list[StoredCheck]) -> None:
    spans = incidents(checks)
    opened = [s for s in spans if s.open]
    for span in opened:
        st.error(f"**Open alert** since {span.opened_at:%Y-%m-%d %H:%M} UTC: {span.message}")
    if not checks:
        st.info(
            "No monitoring checks recorded in this period: run `churnops monitor` on a schedule, "
            "or use *Check now* at the bottom of this page."
        )
        return
    if not opened:
        st.success(f"No open alerts (last check {checks[-1].created_at:%Y-%m-%d %H:%M} UTC).")
    if spans:
        st.plotly_chart(charts.alerts_timeline(spans, now=datetime.now(UTC)))


def _drift(checks: list[StoredCheck]) -> None:
    st.subheader("Drift per feature")
    matrix = drift_matrix(checks)
    if matrix is None or matrix.empty:
        st.caption("No per-day drift series stored yet.")
    else:
        st.plotly_chart(charts.drift_heatmap(matrix))
    if checks:
        latest = checks[-1].report
        drifted = latest.drift.drifted_features
        st.markdown(
            f"Latest check: **{latest.drift.n_drifted} of {latest.drift.n_features}** features "
            f"drifted" + (f": **{', '.join(drifted)}**" if drifted else "")
        )
        st.dataframe(charts.drift_table(latest), hide_index=True)


def _volume(url: str, days: int, model_name: str | None, checks: list[StoredCheck]) -> None:
    st.subheader("Volume and scores")
    volume = queries.daily_volume(url, days, model_name)
    if not volume.days:
        st.caption(f"No predictions of {model_name} in the last {PERIODS[days]}.")
        return
    activity = period_activity(checks)
    left, right = st.columns(2)
    left.plotly_chart(charts.volume_chart(volume, activity))
    if activity.periods:
        right.plotly_chart(charts.score_distribution_chart(activity))
    else:
        right.caption("Scores per day come with the first stored check.")


def _performance(checks: list[StoredCheck]) -> None:
    st.subheader("Performance")
    series = performance_series(checks)
    if series.periods:
        st.plotly_chart(charts.performance_chart(series))
    latest = checks[-1].report if checks else None
    if latest is not None and latest.performance is not None:
        perf = latest.performance
        st.caption(
            f"Latest check: {perf.n_labelled:,} of {perf.n_scored:,} predictions have a "
            "feedback label; estimated figures (CBPE) use every prediction."
        )
        table = charts.performance_table(latest)
        st.dataframe(table.style.format(precision=4, na_rep="-"), hide_index=True)
        for reason in perf.reasons:
            st.warning(reason)


def _quality(checks: list[StoredCheck]) -> None:
    st.subheader("Data quality")
    if not checks:
        st.caption("Data quality comes with the first stored check.")
        return
    latest = checks[-1].report
    issues = latest.quality.issues
    if issues:
        st.warning(f"{len(issues)} data quality issue(s): " + "; ".join(issues[:5]))
    else:
        st.caption("No nulls beyond training, unseen categories or out-of-range values.")
    table = charts.quality_table(latest)
    st.dataframe(
        table.style.format(
            {c: "{:.1%}" for c in table.columns if c not in ("feature", "issues")}, na_rep="-"
        ),
        hide_index=True,
    )


def _drill_down(settings: Settings, url: str, checks: list[StoredCheck]) -> None:
    st.subheader("Feature drill-down")
    if not checks:
        st.caption("Pick a feature once a check has been stored.")
        return
    latest = checks[-1]
    report = latest.report
    ordered = sorted(report.drift.features, key=lambda f: (not f.drifted, -f.psi))
    feature = st.selectbox(
        "Feature (reference against the latest check's window)",
        [f.feature for f in ordered],
        index=None,
        placeholder="choose a feature",
        format_func=lambda name: (
            f"{name} (drift)" if name in report.drift.drifted_features else name
        ),
    )
    if feature is None:
        return
    name = latest.model_name or settings.registry.model_name
    version = latest.model_version
    if version is None:
        st.warning("The latest check did not record its model version; no reference to show.")
        return
    try:
        profile = queries.reference_profile(settings.resolved_tracking_uri(), name, version)
    except (RegistryError, OSError) as exc:
        st.warning(f"The model registry cannot be read right now, so no reference: {exc}")
        return
    if profile is None:
        st.warning(f"{name} v{version} carries no reference profile.")
        return
    since = latest.window_start or report.window_start or latest.created_at
    until = latest.window_end
    drift = report.drift.feature(feature)
    if feature in profile.numeric:
        edges = tuple(profile.numeric[feature].bin_edges)
        counts = queries.numeric_counts(url, feature, edges, since, until)
        dist = numeric_distribution(profile, feature, counts)
    else:
        cats = queries.category_counts(url, feature, since, until)
        dist = categorical_distribution(profile, feature, cats)
    st.plotly_chart(charts.feature_distribution_chart(dist, psi=drift.psi))
    if drift.reasons:
        st.caption(f"{feature}: {drift.status} ({'; '.join(drift.reasons)})")


def _business(settings: Settings, checks: list[StoredCheck]) -> None:
    st.subheader("Business")
    activity = period_activity(checks)
    if not activity.periods:
        st.caption("Churn rates per day come with the first stored check.")
        return
    st.plotly_chart(charts.churn_rate_chart(activity))
    value = business_value(activity, settings.business)
    if value is None:
        st.caption(
            "Set `business.value_retained`, `business.offer_cost` and "
            "`business.offer_success_rate` in params.yaml to price the retention offers and "
            "the cost of wrong decisions."
        )
        return
    a, b, c, d = st.columns(4)
    a.metric("Offers at the threshold", f"{value.offers:,}")
    b.metric("Expected value of the offers", f"{value.expected_value:,.0f}")
    c.metric(f"False positives ({value.false_positives:,})", f"{value.false_positive_cost:,.0f}")
    d.metric(f"False negatives ({value.false_negatives:,})", f"{value.false_negative_cost:,.0f}")
    st.caption(
        f"Over the {len(activity.periods)} day(s) the checks covered. Costs from "
        f"{value.labelled:,} predictions with feedback at the time of the check: a false "
        "positive wastes an offer, a false negative loses the value an offer would have kept."
    )


def _check_now(settings: Settings) -> None:
    st.subheader("Check now")
    with st.form("check-now"):
        window = st.selectbox("Window", CHECK_WINDOWS, index=1)
        submitted = st.form_submit_button("Check now")
    if not submitted:
        return
    from churnops.monitoring.run import run_monitor

    try:
        with st.spinner("Running the monitor on the window..."):
            outcome = run_monitor(settings, window=window, record=True)
    except ChurnopsError as exc:
        st.error(f"The check could not run: {exc}")
        return
    queries.clear()
    report = outcome.report
    if outcome.drift_found:
        drifted = ", ".join(report.drift.drifted_features) or "scores or performance"
        st.error(f"**Drift found** in {report.n_rows:,} predictions: {drifted}")
    else:
        st.success(f"**No drift** in {report.n_rows:,} predictions of the last {window}.")
    for event in outcome.alerts:
        st.warning(f"Alert {event.action}: {event.message}")
    st.caption(f"Stored as monitoring result #{outcome.result_id}; report: {outcome.html_path}")


def main() -> None:
    try:
        settings = get_settings()
    except ChurnopsError as exc:
        st.error(f"The configuration cannot be read: {exc}")
        return
    url = settings.resolved_database_url()
    st.title("Monitoring")
    days = st.selectbox("Period shown", list(PERIODS), index=2, format_func=PERIODS.__getitem__)
    model_name = settings.registry.model_name
    try:
        status = queries.store_status(url)
        if not status.ready or status.empty:
            st.info(NO_PREDICTIONS.format(url=safe_url(url)))
            _check_now(settings)
            return
        checks = queries.checks(url, days)
        _alerts(checks)
        _drift(checks)
        _volume(url, days, model_name, checks)
        _performance(checks)
        _quality(checks)
        _drill_down(settings, url, checks)
        _business(settings, checks)
    except StoreError as exc:
        _store_unreachable(url, exc)
        return
    _check_now(settings)


main()
