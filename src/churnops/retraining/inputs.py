"""Gathering what the policy reads: the champion from the registry, checks and decisions from
the store. The only part of the policy that does I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from churnops.retraining.policy import RETRAIN_WINDOW, ChampionState, PolicyInputs
from churnops.retraining.store_reads import decision_history, labelled_count, latest_checks
from churnops.settings import RetrainingSettings
from churnops.store.store import PredictionStore

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

CHECKS_READ = 50  # the policy looks at the last K checks; a few more survive the row filter


def champion_state(client: MlflowClient, model_name: str) -> ChampionState:
    """The champion's version, when it became champion, and its training rows (from its run)."""
    from churnops.modeling.registry import CHAMPION, alias_version

    current = alias_version(client, model_name, CHAMPION)
    if current is None:
        return ChampionState(model_name, None, None, None)
    tags = dict(current.tags)
    since = _parse_time(tags.get("churnops.promoted_at")) or datetime.fromtimestamp(
        current.creation_timestamp / 1000, UTC
    )
    rows: int | None = None
    if current.run_id:
        params = client.get_run(current.run_id).data.params
        rows = int(params["n_rows"]) if params.get("n_rows", "").isdigit() else None
    return ChampionState(model_name, str(current.version), since, rows)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def gather_inputs(
    store: PredictionStore,
    champion: ChampionState,
    settings: RetrainingSettings,
    *,
    now: datetime,
) -> PolicyInputs:
    """Everything `policy.evaluate` needs, read in a handful of indexed queries."""
    history = decision_history(store, model_name=champion.model_name, since=now - RETRAIN_WINDOW)
    limit = max(CHECKS_READ, settings.triggers.drift_windows * 4)
    labelled = 0
    if champion.since is not None and settings.triggers.new_labelled_share is not None:
        labelled = labelled_count(store, since=champion.since)
    return PolicyInputs(
        now=now,
        champion=champion,
        checks=latest_checks(store, limit=limit, since=now - timedelta(days=90)),
        started=history.started,
        labelled_rows=labelled,
        used_keys=history.used_keys,
    )
