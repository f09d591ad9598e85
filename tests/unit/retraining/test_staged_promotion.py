"""`retraining.rollout: staged`: the loop's promotion starts a deployment (shadow with automatic
steps) instead of moving the champion alias, announced on the webhook; `direct` moves the alias.
A real SQLite store and registry, a real HTTP receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from churnops.modeling import registry
from churnops.retraining.promotion import Rollout, promote_challenger
from churnops.settings import Settings
from churnops.store import PredictionStore, read_decisions
from churnops.store.deployment import read_policy

NAME = "churn-model"


def _registry(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    for _ in range(2):
        client.create_model_version(NAME, source=str(home))
    client.set_registered_model_alias(NAME, registry.CHAMPION, "1")
    return client


def _settings(home: Path, rollout: Rollout, url: str | None = None) -> Settings:
    settings = Settings(home=str(home), tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    settings.retraining.rollout = rollout
    settings.monitoring.webhook_url = url
    return settings


def test_staged_starts_a_shadow_deployment_and_leaves_the_champion(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    client = _registry(tmp_path)
    settings = _settings(tmp_path, "staged", url)
    with PredictionStore(f"sqlite:///{tmp_path / 'p.db'}") as store:
        store.create()
        how = promote_challenger(
            client, store, settings=settings, version="2", champion_version="1", why="gate passed"
        )
        policy = read_policy(store, NAME)
        decisions = read_decisions(store, kind="deployment")

    assert how == "staged"
    assert policy is not None and policy.active
    assert (policy.mode, policy.challenger_version, policy.champion_version) == ("shadow", "2", "1")
    assert policy.auto and policy.steps == tuple(settings.deployment.steps)
    assert str(registry.alias_version(client, NAME, registry.CHAMPION).version) == "1"
    assert [(d.outcome, d.to_version) for d in decisions] == [("started", "2")]
    assert len(received) == 1


def test_direct_moves_the_champion_alias_and_starts_no_deployment(tmp_path: Path) -> None:
    client = _registry(tmp_path)
    settings = _settings(tmp_path, "direct")
    with PredictionStore(f"sqlite:///{tmp_path / 'p.db'}") as store:
        store.create()
        how = promote_challenger(
            client, store, settings=settings, version="2", champion_version="1", why="gate passed"
        )
        assert read_policy(store, NAME) is None

    assert how == "direct"
    assert str(registry.alias_version(client, NAME, registry.CHAMPION).version) == "2"
