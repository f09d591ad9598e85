"""The one step that hands a challenger the champion alias. Every automatic promotion of the loop
goes through `promote_challenger`, so another rollout strategy (a canary) replaces only this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def promote_challenger(
    client: MlflowClient,
    *,
    model_name: str,
    version: str,
    why: str,
    rollout: Literal["direct"],
) -> str:
    """Make `version` the champion as `rollout` says; returns how it went ("direct")."""
    from churnops.modeling.registry import promote

    if rollout != "direct":  # pragma: no cover - the settings allow only "direct" today
        raise ValueError(f"unknown rollout {rollout!r}")
    promote(client, name=model_name, version=version, why=why)
    return rollout
