"""Models: registered versions with aliases, metrics, leakage flags and who/when/why history; two
versions side by side; promote and roll back with a confirmation and a reason.

A Streamlit script (an entry point: settings are read here). Promotion and rollback call the same
`modeling.registry` functions as `churnops models promote|rollback`, so they are recorded alike.
"""

from __future__ import annotations

import streamlit as st

from churnops.dashboard import charts_monitoring as charts
from churnops.dashboard import queries
from churnops.errors import ChurnopsError, ModelNotFoundError
from churnops.modeling.registry import CHAMPION
from churnops.modeling.registry_history import VersionDetails
from churnops.settings import Settings, get_settings

NO_MODEL = (
    "No registered model named `{name}` in the registry at `{uri}` yet. Train one with "
    "`churnops train` (or `make run`, which trains when there is no champion)."
)


def _registry_unreachable(uri: str, exc: Exception) -> None:
    st.error(
        f"The model registry at `{uri}` cannot be read right now ({exc}). Check that the "
        "tracking server or database is running and that `tracking_uri` points at it."
    )


def _champion(versions: list[VersionDetails]) -> VersionDetails | None:
    return next((v for v in versions if CHAMPION in v.summary.aliases), None)


def _overview(versions: list[VersionDetails]) -> None:
    champion = _champion(versions)
    if champion is not None:
        s = champion.summary
        auc = f"{s.test_roc_auc:.3f}" if s.test_roc_auc is not None else "-"
        st.markdown(f"Champion: **v{s.version}** ({s.candidate}, test ROC-AUC {auc})")
    else:
        st.warning("No version holds the champion alias: the API has nothing to serve.")
    leaky = [v for v in versions if v.summary.leakage]
    for v in leaky:
        flags = "; ".join(v.leakage_flags) or "flagged at training"
        st.warning(f"v{v.version} has leakage flags: {flags}")
    st.dataframe(charts.versions_table(versions), hide_index=True)
    st.subheader("History")
    history = charts.history_table(versions)
    if history.empty:
        st.caption("No alias has been moved yet.")
    else:
        st.dataframe(history.style.format(na_rep="-"), hide_index=True)


def _compare(settings: Settings, versions: list[VersionDetails]) -> None:
    st.subheader("Compare two versions")
    if len(versions) < 2:
        st.caption("Only one version is registered; train again to compare.")
        return
    numbers = [v.version for v in versions]
    champion = _champion(versions)
    first = numbers.index(champion.version) if champion is not None else 1
    second = 0 if first != 0 else 1
    left, right = st.columns(2)
    a_number = left.selectbox("Version A", numbers, index=first, key="compare-a")
    b_number = right.selectbox("Version B", numbers, index=second, key="compare-b")
    by_number = {v.version: v for v in versions}
    a, b = by_number[a_number], by_number[b_number]
    st.plotly_chart(charts.metrics_comparison_chart(a, b))
    st.table(charts.comparison_table(a, b).set_index("metric"))
    uri = settings.resolved_tracking_uri()
    for column, details in zip(st.columns(2), (a, b), strict=True):
        image = queries.roc_plot(uri, details.summary.run_id) if details.summary.run_id else None
        if image is None:
            column.caption(f"v{details.version}: its training run logged no ROC plot.")
        else:
            column.image(image, caption=f"v{details.version}: ROC curves on its test split")


def _change(settings: Settings, versions: list[VersionDetails]) -> None:
    from churnops.modeling.tracking import configure_tracking
    from churnops.retraining.by_hand import promote_by_hand, rollback_by_hand

    st.subheader("Promote or roll back")
    name = settings.registry.model_name
    champion = _champion(versions)
    with st.form("promote"):
        choices = [v.version for v in versions if v is not champion]
        version = st.selectbox("Version to make champion", choices)
        why = st.text_input("Reason (recorded with the promotion)", key="promote-why")
        confirmed = st.checkbox("I confirm: the API serves this version from its next reload")
        promote = st.form_submit_button("Promote")
    previous = queries.champion_history(settings.resolved_tracking_uri(), name)
    with st.form("rollback"):
        if previous:
            st.markdown(f"Roll back gives the champion alias back to **v{previous[-1]}**.")
        else:
            st.caption("No previous champion is recorded: there is nothing to roll back to.")
        why_back = st.text_input("Reason (recorded with the rollback)", key="rollback-why")
        confirmed_back = st.checkbox("I confirm: the previous champion comes back")
        rollback = st.form_submit_button("Roll back")
    action = "promote" if promote else "rollback" if rollback else None
    if action is None:
        return
    reason = (why if promote else why_back).strip()
    if not reason:
        st.error("Give a reason: it is recorded with the change, as `--why` is by the CLI.")
        return
    if not (confirmed if promote else confirmed_back):
        st.error("Tick the confirmation box first.")
        return
    try:
        client = configure_tracking(settings)
        store_url = settings.resolved_database_url()
        if promote and version is not None:
            done = promote_by_hand(client, store_url, name=name, version=version, why=reason)
            message = f"{name} v{done.version} is now champion"
        else:
            done = rollback_by_hand(client, store_url, name=name, why=reason)
            message = f"{name} v{done.version} is champion again"
    except ChurnopsError as exc:
        st.error(f"Not changed: {exc}")
        return
    queries.clear()
    st.success(message)
    if done.not_recorded:
        st.warning(done.not_recorded)
    st.button("Refresh the table")


def main() -> None:
    try:
        settings = get_settings()
    except ChurnopsError as exc:
        st.error(f"The configuration cannot be read: {exc}")
        return
    st.title("Models")
    uri = settings.resolved_tracking_uri()
    name = settings.registry.model_name
    try:
        versions = queries.versions(uri, name)
    except ModelNotFoundError:
        st.info(NO_MODEL.format(name=name, uri=uri))
        return
    except Exception as exc:  # MLflow surfaces a dead database as many exception types
        _registry_unreachable(uri, exc)
        return
    _overview(versions)
    _compare(settings, versions)
    _change(settings, versions)


main()
