"""Customer page: score one customer with the served model, see why, and try what-ifs.

The form comes from `GET /model`, so it fits whatever table the champion was trained on. The first
answer of a session is kept as the baseline: later predictions show how far the probability moved.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from churnops.dashboard.charts_scoring import probability_gauge, reasons_chart
from churnops.dashboard.client import Problem
from churnops.dashboard.context import AppContext, app_context, served_model, show_problem
from churnops.dashboard.forms import field_specs, render_form, to_payload
from churnops.dashboard.recommend import recommend

BASELINE, LATEST, ERRORS = "customer:baseline", "customer:latest", "customer:errors"


def _predict(context: AppContext, payload: dict[str, Any], model_key: str) -> None:
    result = context.client.predict(payload)
    if isinstance(result, Problem):
        st.session_state[ERRORS] = result
        return
    st.session_state.pop(ERRORS, None)
    st.session_state[LATEST] = result.value
    baseline = st.session_state.get(BASELINE)
    if baseline is None or baseline["model"] != model_key:
        st.session_state[BASELINE] = {"model": model_key, "answer": result.value}


def _show_answer(context: AppContext, info: dict[str, Any], answer: dict[str, Any]) -> None:
    baseline = st.session_state.get(BASELINE, {}).get("answer")
    first = baseline is None or baseline["prediction_id"] == answer["prediction_id"]
    probability = float(answer["churn_probability"])
    delta = None if first else probability - float(baseline["churn_probability"])
    left, middle, right = st.columns(3)
    left.metric(
        "Churn probability",
        f"{probability:.1%}",
        delta=None if delta is None else f"{delta * 100:+.1f} pts vs first answer",
        delta_color="inverse",
    )
    middle.metric("Decision", "will churn" if answer["will_churn"] else "will stay")
    right.metric("Risk level", str(answer["risk_level"]).upper())
    chart_left, chart_right = st.columns(2)
    with chart_left:
        st.plotly_chart(
            probability_gauge(
                probability,
                threshold=float(info["threshold"]),
                bands=info["risk_bands"],
                baseline=None if first else float(baseline["churn_probability"]),
            )
        )
    with chart_right:
        if answer.get("reasons"):
            st.plotly_chart(reasons_chart(answer["reasons"]))
        else:
            st.caption("The model gave no reasons for this prediction.")
    st.subheader("Recommendations")
    for item in recommend(
        risk_level=str(answer["risk_level"]),
        reasons=answer.get("reasons") or [],
        texts=context.settings.app.recommendations,
    ):
        st.markdown(f"- {item.text} :gray[(because: {item.because})]")
    st.caption(
        f"Model {answer['model_name']} version {answer['model_version']}; "
        f"prediction id {answer['prediction_id']}."
    )


def main() -> None:
    st.title("Customer")
    context = app_context()
    info = served_model(context)
    if info is None:
        st.stop()
        return
    model_key = f"{info['name']}:{info['version']}"
    st.caption(
        f"Scoring with **{info['name']}** version {info['version']}"
        + (f" (@{info['alias']})" if info.get("alias") else "")
        + f"; decision threshold {float(info['threshold']):.0%}."
    )
    specs = field_specs(info)
    problem: Problem | None = st.session_state.get(ERRORS)
    with st.form("customer"):
        values = render_form(specs, errors=problem.fields if problem is not None else {})
        submitted = st.form_submit_button("Predict", type="primary")
    if submitted:
        _predict(context, to_payload(specs, values), model_key)
        problem = st.session_state.get(ERRORS)
        if problem is not None and problem.fields:
            st.rerun()  # draw the API's reasons next to the fields they name
    if problem is not None:
        show_problem(problem, what="score this customer")
    latest = st.session_state.get(LATEST)
    if latest is not None and f"{latest['model_name']}:{latest['model_version']}" == model_key:
        if st.button("Use this answer as the what-if baseline"):
            st.session_state[BASELINE] = {"model": model_key, "answer": latest}
        _show_answer(context, info, latest)
    else:
        st.info(
            "Fill in the customer and press **Predict**. Change fields afterwards to see "
            "how the probability moves against the first answer."
        )


main()
