"""Batch page: upload a table, score it through the API in chunks, read the summary, download.

Rows the API refuses are listed with their row number and the API's reason; the rest is scored.
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from churnops.dashboard.batch import (
    FORMATS,
    BatchOutcome,
    UploadError,
    plan_columns,
    read_upload,
    riskiest,
    score_upload,
)
from churnops.dashboard.charts_scoring import probability_histogram, risk_summary_bar
from churnops.dashboard.context import AppContext, app_context, served_model, show_problem

RESULT = "batch:result"


def _score(context: AppContext, info: dict[str, Any], name: str, data: bytes) -> None:
    limit = context.settings.app.max_upload_mb
    if len(data) > limit * 1024 * 1024:
        st.error(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {limit} MB (app.max_upload_mb)."
        )
        return
    try:
        frame = read_upload(name, data)
        send, notes = plan_columns(list(frame.columns), info["schema"])
    except UploadError as exc:
        st.error(
            f"{name} cannot be scored as it is:\n\n"
            + "\n".join(f"- {problem}" for problem in exc.problems)
        )
        return
    bar = st.progress(0.0, text=f"Scoring {len(frame):,} rows...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Scored {done:,} of {total:,} rows")

    outcome = score_upload(
        context.client,
        frame,
        send=send,
        schema=info["schema"],
        chunk_rows=context.settings.app.batch_chunk_rows,
        on_progress=progress,
    )
    outcome.notes = notes
    bar.empty()
    st.session_state[RESULT] = (hashlib.sha256(data).hexdigest(), name, outcome)


def _show(info: dict[str, Any], name: str, outcome: BatchOutcome) -> None:
    for note in outcome.notes:
        st.caption(note)
    if outcome.problem is not None:
        show_problem(outcome.problem, what=f"score all of {name}")
        if outcome.scored.empty:
            return
        st.warning(f"Showing the {len(outcome.scored):,} rows scored before the API stopped.")
    scored = outcome.scored
    counts = outcome.counts()
    cols = st.columns(4)
    cols[0].metric("Customers scored", f"{len(scored):,}")
    cols[1].metric("Predicted churn rate", f"{outcome.churn_rate:.1%}")
    cols[2].metric("High risk", f"{counts.get('high', 0):,}")
    cols[3].metric("Rows rejected", f"{len(outcome.rejected):,}")
    if not scored.empty:
        left, right = st.columns(2)
        with left:
            st.plotly_chart(risk_summary_bar(counts))
        with right:
            st.plotly_chart(
                probability_histogram(
                    scored["churn_probability"].tolist(),
                    threshold=float(info["threshold"]),
                    bands=info["risk_bands"],
                )
            )
        st.subheader("Riskiest customers")
        st.dataframe(
            riskiest(scored, id_column=info["schema"].get("id_column")),
            hide_index=True,
            column_config={
                "churn_probability": st.column_config.ProgressColumn(
                    "churn probability", min_value=0.0, max_value=1.0, format="percent"
                )
            },
        )
        stem = name.rsplit(".", 1)[0]
        st.download_button(
            "Download the scored file (CSV)",
            scored.to_csv(index=False).encode(),
            file_name=f"{stem}.scored.csv",
            mime="text/csv",
            type="primary",
        )
    if outcome.rejected:
        st.subheader(f"Rejected rows ({len(outcome.rejected):,})")
        st.caption("Row numbers count the data rows from 1 (the header is not a row).")
        st.dataframe(
            [{"row": item.row, "reason": item.reason} for item in outcome.rejected],
            hide_index=True,
        )


def main() -> None:
    st.title("Batch")
    context = app_context()
    info = served_model(context)
    if info is None:
        st.stop()
        return
    limit = context.settings.app.max_upload_mb
    st.caption(
        f"Score a whole table with **{info['name']}** version {info['version']}: CSV, XLSX or "
        f"Parquet up to {limit} MB, with the model's input columns "
        f"({len(info['schema']['features'])} features"
        + (
            f", optional id {info['schema']['id_column']}"
            if info["schema"].get("id_column")
            else ""
        )
        + ")."
    )
    upload = st.file_uploader(
        "Customer table", type=[suffix.lstrip(".") for suffix in FORMATS], key="batch:upload"
    )
    if upload is None:
        st.session_state.pop(RESULT, None)
        st.info("Upload a file to score it.")
        return
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    held = st.session_state.get(RESULT)
    if held is None or held[0] != digest or held[1] != upload.name:
        _score(context, info, upload.name, data)
        held = st.session_state.get(RESULT)
    if held is not None and held[0] == digest:
        _show(info, held[1], held[2])


main()
