"""`churnops flows serve`: the three flows as deployments of one long-running process, on the
cron schedules of `retraining.schedules` (a null schedule: runs only when asked)."""

from __future__ import annotations

from typing import Any

from churnops.settings import FlowSchedules

DEPLOYMENTS = ("training", "monitoring", "retraining")


def deployments(schedules: FlowSchedules, *, config: str | None) -> list[Any]:
    """One RunnerDeployment per flow, with its schedule and the params file to read."""
    from churnops.flows.monitoring import monitoring_flow
    from churnops.flows.retraining import retraining_flow
    from churnops.flows.training import training_flow

    flows: dict[str, Any] = {
        "training": training_flow,
        "monitoring": monitoring_flow,
        "retraining": retraining_flow,
    }
    out = []
    for name in DEPLOYMENTS:
        cron = getattr(schedules, name)
        out.append(
            flows[name].to_deployment(
                f"churnops-{name}", cron=cron, parameters={"config": config}, tags=["churnops"]
            )
        )
    return out


def serve_flows(schedules: FlowSchedules, *, config: str | None, limit: int | None = None) -> None:
    """Serve until interrupted (Ctrl-C/SIGTERM); the API is PREFECT_API_URL or Prefect's own."""
    from prefect import serve

    serve(*deployments(schedules, config=config), limit=limit)
