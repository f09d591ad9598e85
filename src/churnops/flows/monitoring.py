"""`monitoring_flow`: check the store's latest window (report, stored result, alerts)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from churnops.flows.tasks import load_settings, retrying

ARTIFACT_KEY = "churnops-monitoring"


@retrying("check window")
def check_window(settings: Any, window: str | None) -> dict[str, Any]:
    """`run_monitor` over the store: window -> report -> stored result -> alerts."""
    from churnops.monitoring.run import run_monitor

    return run_monitor(settings, window=window).to_dict()


@flow(name="churnops-monitoring", log_prints=True)
def monitoring_flow(config: str | None = None, window: str | None = None) -> dict[str, Any]:
    """One monitoring check (`window` like `7d`; default `monitoring.default_window`)."""
    settings = load_settings(config)
    result = check_window(settings, window)
    summary = result["summary"]
    create_markdown_artifact(
        "\n".join(
            [
                f"# Monitoring: {'drift' if result['drift_found'] else 'no drift'}",
                "",
                f"- rows: {summary['n_rows']}, dataset drift: {summary['dataset_drift']} "
                f"({', '.join(summary['drifted_features']) or 'no feature'})",
                f"- prediction drift: {summary['prediction_drift']}, "
                f"performance degraded: {summary['performance_degraded']}",
                f"- report: `{result['report_html']}`",
            ]
        ),
        key=ARTIFACT_KEY,
    )
    return result
