"""Service page: is the API alive and ready, what does it serve, how busy and how healthy is it.

Everything comes from the API itself: `/health`, `/ready`, `/model` and the Prometheus text of
`/metrics`. The request rate needs two readings: press Refresh (or come back) to get one.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from churnops.dashboard.client import Ok
from churnops.dashboard.context import app_context, show_problem
from churnops.dashboard.service_metrics import Snapshot, parse_metrics, rates

PREVIOUS = "service:previous"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f} ms"


def main() -> None:
    st.title("Service")
    context = app_context()
    st.caption(f"The prediction API at {context.client.base_url}.")
    st.button("Refresh", icon=":material/refresh:")
    health = context.client.health()
    if not isinstance(health, Ok):
        show_problem(health, what="reach the API")
        st.stop()
        return
    ready = context.client.ready()
    cols = st.columns(3)
    cols[0].metric("Health", "alive")
    if isinstance(ready, Ok):
        status = str(ready.value.get("status", "?"))
        cols[1].metric("Readiness", status.replace("_", " "))
        checks = ready.value.get("checks", {})
        degraded = ready.value.get("degraded") or []
        if degraded:
            st.warning("Degraded: " + ", ".join(str(d).replace("_", " ") for d in degraded))
    else:
        checks = {}
        show_problem(ready, what="read readiness")
    model = context.client.model()
    if isinstance(model, Ok):
        info = model.value
        alias = f" @{info['alias']}" if info.get("alias") else ""
        cols[2].metric(f"Served model: {info['name']}", f"v{info['version']}{alias}")
        st.caption(
            f"Loaded at {info.get('loaded_at', '?')}; model trained at {info.get('trained_at', '?')}."
        )
    else:
        cols[2].metric("Served model", "none")
        show_problem(model, what="read the served model")

    st.subheader("Prediction store")
    store_cols = st.columns(3)
    store_cols[0].metric("Store", str(checks.get("store", "unknown")))
    store_cols[1].metric("Backlog (waiting to be written)", checks.get("store_queue_depth", "-"))
    store_cols[2].metric("Spooled (database unreachable)", checks.get("store_spooled_records", "-"))

    st.subheader("Traffic")
    text = context.client.metrics_text()
    if not isinstance(text, Ok):
        show_problem(text, what="read /metrics")
        return
    current = parse_metrics(text.value, taken_at=time.time())
    previous: Snapshot | None = st.session_state.get(PREVIOUS)
    per_second = rates(previous, current)
    st.session_state[PREVIOUS] = current
    routes = {r: s for r, s in current.routes.items() if s.requests or s.latency_count}
    traffic_cols = st.columns(3)
    traffic_cols[0].metric("Requests served", f"{current.total_requests:,.0f}")
    traffic_cols[1].metric("Errors (5xx)", f"{sum(s.errors for s in current.routes.values()):,.0f}")
    traffic_cols[2].metric(
        "Request rate",
        "press Refresh" if per_second is None else f"{sum(per_second.values()):,.2f} /s",
    )
    if not routes:
        st.info("No requests counted yet: score a customer on the Customer page.")
        return
    table = pd.DataFrame(
        [
            {
                "route": route,
                "requests": int(stats.requests),
                "rate /s": None if per_second is None else round(per_second.get(route, 0.0), 3),
                "4xx": int(stats.rejected),
                "5xx": int(stats.errors),
                "mean latency": _ms(stats.mean_latency),
                "p95 latency (bucket)": _ms(stats.quantile(0.95)),
            }
            for route, stats in sorted(routes.items())
        ]
    )
    st.dataframe(table, hide_index=True)
    if current.predictions:
        st.caption(
            "Predictions served by risk level: "
            + ", ".join(
                f"{level} {count:,.0f}" for level, count in sorted(current.predictions.items())
            )
        )


main()
