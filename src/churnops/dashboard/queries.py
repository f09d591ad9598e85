"""Cached, read-only data access of the Monitoring and Models pages.

Thin wrappers over the core's own read functions (`store.queries`, `monitoring.history`,
`modeling.registry_history`) with `st.cache_data(ttl=...)`, keyed by plain values (URLs, names,
day counts) so every session shares one answer per minute. Nothing here aggregates or decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import streamlit as st

from churnops.data.profile import ReferenceProfile
from churnops.monitoring.history import StoredCheck, stored_checks
from churnops.monitoring.run import RESULT_KIND
from churnops.store import queries as store_queries
from churnops.store.store import PredictionStore

if TYPE_CHECKING:  # MLflow is imported when the registry is first read, not by the Monitoring page
    from mlflow.tracking import MlflowClient

    from churnops.modeling.registry_history import VersionDetails

TTL_SECONDS = 60
MAX_CHECKS = 5_000  # monitoring results read for the timeline (90 days of hourly checks: 2,160)


def since_days(days: int, *, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days ago (so the cache key does not move every second)."""
    today = (
        (now or datetime.now(UTC))
        .astimezone(UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    return today - timedelta(days=days - 1)


@st.cache_resource(show_spinner=False)
def store_at(url: str) -> PredictionStore:
    """One store (one connection pool) per URL for the whole app; never migrated from here."""
    return PredictionStore(url)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def store_status(url: str) -> store_queries.StoreStatus:
    return store_queries.store_status(store_at(url))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def daily_volume(url: str, days: int, model_name: str | None) -> store_queries.DailyVolume:
    return store_queries.daily_volume(store_at(url), since=since_days(days), model_name=model_name)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def checks(url: str, days: int) -> list[StoredCheck]:
    """Stored monitoring runs of the last `days` days, oldest first."""
    results = store_at(url).read_monitoring_results(
        kind=RESULT_KIND, since=since_days(days), limit=MAX_CHECKS
    )
    return stored_checks(results)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def numeric_counts(
    url: str, feature: str, edges: tuple[float, ...], since: datetime, until: datetime | None
) -> store_queries.NumericCounts:
    return store_queries.numeric_feature_counts(
        store_at(url), feature, list(edges), since=since, until=until
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def category_counts(
    url: str, feature: str, since: datetime, until: datetime | None
) -> dict[str | None, int]:
    return store_queries.category_feature_counts(store_at(url), feature, since=since, until=until)


def _client(tracking_uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def versions(tracking_uri: str, name: str) -> list[VersionDetails]:
    from churnops.modeling.registry_history import version_details

    return version_details(_client(tracking_uri), name=name)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def champion_history(tracking_uri: str, name: str) -> list[str]:
    """Previous champions, oldest first (rollback goes back to the last one)."""
    from churnops.modeling.registry_history import champion_history as history

    return history(_client(tracking_uri), name=name)


@st.cache_data(ttl=3600, show_spinner=False)
def reference_profile(tracking_uri: str, name: str, version: str) -> ReferenceProfile | None:
    """The reference profile inside a registered version (immutable: cached for an hour)."""
    from churnops.modeling.registry_history import reference_profile_json

    text = reference_profile_json(tracking_uri, name=name, version=version)
    return None if text is None else ReferenceProfile.model_validate_json(text)


@st.cache_data(ttl=3600, show_spinner=False)
def roc_plot(tracking_uri: str, run_id: str) -> bytes | None:
    """The ROC plot the training run logged (PNG), or None."""
    from churnops.modeling.registry_history import ROC_PLOT, run_artifact

    return run_artifact(_client(tracking_uri), run_id, ROC_PLOT)


def clear() -> None:
    """Forget cached reads (after a promotion, a rollback or a check)."""
    st.cache_data.clear()


@st.cache_data(ttl=5, show_spinner=False)
def deployment(url: str, model_name: str, business: dict[str, Any]) -> Any:
    """(policy, comparison, decisions) of the model's deployment, or None when none was set."""
    from churnops.deployment.compare import compare
    from churnops.settings import BusinessSettings
    from churnops.store.decisions import read_decisions
    from churnops.store.deployment import read_policy

    store = store_at(url)
    policy = read_policy(store, model_name)
    if policy is None:
        return None
    comparison = compare(
        store, policy, business=BusinessSettings(**business), bootstrap_samples=100
    )
    decisions = read_decisions(store, kind="deployment", model_name=model_name, limit=50)
    return policy, comparison, decisions
