"""The one step that hands a challenger the champion alias. Every automatic promotion of the loop
goes through `promote_challenger`: `direct` moves the alias now; `staged` starts a deployment
(shadow -> canary steps -> champion, judged on live traffic by `churnops.deployment`) and the
API's workers move the alias when the last step passes, or roll it back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from churnops.deployment.controller import Notify
    from churnops.settings import Settings
    from churnops.store.store import PredictionStore

Rollout = Literal["direct", "staged"]


def promote_challenger(
    client: MlflowClient,
    store: PredictionStore,
    *,
    settings: Settings,
    version: str,
    champion_version: str | None,
    why: str,
) -> Rollout:
    """Make `version` the champion as `settings.retraining.rollout` says; returns which way."""
    rollout = settings.retraining.rollout
    name = settings.registry.model_name
    if rollout == "direct":
        from churnops.modeling.registry import promote

        promote(client, name=name, version=version, why=why)
        return rollout
    from churnops.deployment.controller import start_rollout

    start_rollout(
        store,
        model_name=name,
        challenger_version=version,
        champion_version=champion_version,
        settings=settings.deployment,
        notify=_webhook(settings.monitoring.webhook_url),
        reason=why,
    )
    return rollout


def _webhook(url: str | None) -> Notify | None:
    if not url:
        return None
    from churnops.monitoring.alerts import post_webhook

    return lambda payload: post_webhook(url, payload, timeout=5.0)
