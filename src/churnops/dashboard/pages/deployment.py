"""Deployment: the policy in force (shadow, canary, blue-green), champion vs challenger per
variant (requests, agreement, PSI/JS, latency, errors; with labels ROC-AUC, PR-AUC, Brier and
expected profit with confidence intervals) and every step and rollback with its reason.

A Streamlit script (an entry point: settings are read here). The figures come from
`deployment.compare`, the same function `churnops deploy status` and the automatic steps use.
"""

from __future__ import annotations

import streamlit as st

from churnops.dashboard import charts_deployment as charts
from churnops.dashboard import queries
from churnops.errors import ChurnopsError
from churnops.settings import get_settings


def main() -> None:
    try:
        settings = get_settings()
    except ChurnopsError as exc:
        st.error(f"The configuration cannot be read: {exc}")
        return
    st.title("Deployment")
    url = settings.resolved_database_url()
    name = settings.registry.model_name
    try:
        view = queries.deployment(url, name, settings.business.model_dump())
    except ChurnopsError as exc:
        st.error(f"The prediction store at the configured URL cannot be read right now ({exc}).")
        return
    if view is None:
        st.info(
            "No deployment has been set up: the champion answers every request. Try a "
            "challenger with `churnops deploy shadow <version>` (or `canary`, `blue-green`)."
        )
        return
    policy, comparison, decisions = view
    if not policy.active:
        st.info(
            f"No deployment running: the champion (v{policy.champion_version}) answers every "
            f"request. Last change: {policy.reason or '-'}"
        )
    else:
        what = {
            "shadow": f"shadow: v{policy.challenger_version} also scores "
            f"{policy.sample_rate:.0%} of requests after the answer",
            "canary": f"canary: v{policy.challenger_version} answers {policy.weight:g}% of "
            f"customers (steps {', '.join(f'{s:g}' for s in policy.steps)})",
            "blue-green": f"blue-green: the {policy.live} answers (v"
            f"{policy.challenger_version if policy.live == 'challenger' else policy.champion_version})",
        }[policy.mode]
        st.markdown(
            f"**{what}**; champion v{policy.champion_version}; automatic steps "
            f"{'on' if policy.auto else 'off'}"
        )
    if comparison is not None:
        columns = st.columns(4)
        columns[0].metric("Paired requests", f"{comparison.paired:,}")
        agreement = comparison.agreement
        columns[1].metric("Agreement", "-" if agreement is None else f"{agreement:.1%}")
        columns[2].metric("PSI", "-" if comparison.psi is None else f"{comparison.psi:.3f}")
        columns[3].metric("JS", "-" if comparison.js is None else f"{comparison.js:.3f}")
        st.dataframe(charts.variants_table(comparison), hide_index=True)
        st.plotly_chart(charts.score_histogram(comparison))
    st.subheader("Steps and rollbacks")
    table = charts.decisions_table(decisions)
    if table.empty:
        st.caption("Nothing decided yet.")
    else:
        st.dataframe(table, hide_index=True)


main()
