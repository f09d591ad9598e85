"""The script `streamlit run` starts (`churnops app` runs it); the app itself is in dashboard/app.py.

It lives in a folder of its own: Streamlit treats a `pages/` folder beside its entry script as the
old folder-based navigation and would ignore `st.navigation`.
"""

from churnops.dashboard.app import main

main()
