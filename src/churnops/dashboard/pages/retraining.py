"""Retraining: what the continuous-training loop decided (started, skipped, promoted, held,
rejected, rolled back), why, and where it stands (cooldown, monthly budget, approvals).

A Streamlit script (an entry point: settings are read here); one indexed read of the decisions
table, cached for a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from churnops.dashboard import queries
from churnops.dashboard.retraining_view import decisions_table, loop_status, reason_of
from churnops.errors import ChurnopsError, StoreError
from churnops.settings import Settings, get_settings
from churnops.store.decisions import Decision, read_decisions
from churnops.store.engine import safe_url

KIND = "retraining"
SHOWN = 500
NO_DECISIONS = (
    "**No retraining decisions yet** in the store at `{url}`. Run the loop with "
    "`churnops retrain` (cron) or `churnops flows serve` (Prefect); `churnops retrain --check` "
    "shows what the policy sees without acting."
)


@st.cache_data(ttl=queries.TTL_SECONDS, show_spinner=False)
def decisions(url: str, model_name: str) -> list[Decision]:
    return read_decisions(queries.store_at(url), kind=KIND, model_name=model_name, limit=SHOWN)


def _status(rows: list[Decision], settings: Settings) -> None:
    guards = settings.retraining.guards
    status = loop_status(rows, guards, now=datetime.now(UTC))
    left, middle, right = st.columns(3)
    left.metric(
        "Last retraining",
        f"{status.last_started:%Y-%m-%d %H:%M}" if status.last_started else "never",
    )
    middle.metric(
        "Retrainings in 30 days", f"{status.started_30_days} of {guards.max_retrains_per_30_days}"
    )
    right.metric(
        "Cooldown until", f"{status.next_allowed:%Y-%m-%d %H:%M}" if status.next_allowed else "over"
    )
    for held in status.awaiting_approval:
        st.warning(
            f"**v{held.to_version} is waiting for approval** ({reason_of(held)}). Promote it with "
            f'`churnops models promote {held.to_version} --why "..."`, or on the Models page.'
        )


def main() -> None:
    try:
        settings = get_settings()
    except ChurnopsError as exc:
        st.error(f"The configuration cannot be read: {exc}")
        return
    url = settings.resolved_database_url()
    st.title("Retraining")
    r = settings.retraining
    st.caption(
        f"Policy: drift in {r.triggers.drift_windows} checks in a row, ROC-AUC down "
        f"{r.triggers.performance_drop}, champion older than {r.triggers.max_champion_age_days} days; "
        f"cooldown {r.guards.cooldown_hours:g} h, at most {r.guards.max_retrains_per_30_days} a month; "
        f"approval {'required' if r.require_approval else 'not required'}."
    )
    try:
        rows = decisions(url, settings.registry.model_name)
    except StoreError as exc:
        st.error(f"The prediction store at `{safe_url(url)}` cannot be read right now ({exc}).")
        return
    if not rows:
        st.info(NO_DECISIONS.format(url=safe_url(url)))
        return
    _status(rows, settings)
    st.subheader("Decisions")
    st.dataframe(decisions_table(rows), hide_index=True)


main()
