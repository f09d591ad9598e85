"""Shared task options: retries where the outside world is (data, registry, store), no caching
(inputs are frames, clients and models: hashing them costs more than the step)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

P = ParamSpec("P")
R = TypeVar("R")
RETRIES, RETRY_DELAY_SECONDS = 3, 5


def retrying(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that talks to the outside world: tried again on failure."""
    return task(
        name=name, retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS, cache_policy=NO_CACHE
    )


def once(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A computation: a retry would repeat the same work on the same input."""
    return task(name=name, cache_policy=NO_CACHE)


def load_settings(config: str | None) -> Any:
    """Flows are entry points: settings are read here, from params.yaml and CHURNOPS_*."""
    from churnops.data.sources import resolve_data_settings
    from churnops.settings import apply_overrides, get_settings

    settings = get_settings(config)
    resolved = resolve_data_settings(settings.data)
    return apply_overrides(settings, {"data": resolved.model_dump()})
