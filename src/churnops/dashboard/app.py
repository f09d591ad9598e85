"""The app: the seven pages in one navigation. `main()` is what the entry script runs.

Streamlit runs `entry/streamlit_app.py`, not this file: an entry script with a `pages/` folder
beside it switches Streamlit to its old folder-based page discovery, which ignores `st.navigation`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"


def main() -> None:
    st.set_page_config(page_title="churnops", page_icon=":material/insights:", layout="wide")
    navigation = st.navigation(
        {
            "Score": [
                st.Page(
                    PAGES / "customer.py", title="Customer", icon=":material/person:", default=True
                ),
                st.Page(PAGES / "batch.py", title="Batch", icon=":material/table_view:"),
            ],
            "Watch": [
                st.Page(PAGES / "monitoring.py", title="Monitoring", icon=":material/monitoring:"),
                st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
                st.Page(PAGES / "retraining.py", title="Retraining", icon=":material/autorenew:"),
                st.Page(PAGES / "deployment.py", title="Deployment", icon=":material/call_split:"),
                st.Page(PAGES / "service.py", title="Service", icon=":material/dns:"),
            ],
        }
    )
    navigation.run()
