"""A person moves the champion alias (`churnops models promote|rollback`, the app's Models page):
the registry change and its decision row, through one function each so both screens record alike.

The alias move is what counts; when the store cannot take the decision row, the move stands and
the caller gets the reason to show as a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from churnops.errors import StoreError
from churnops.retraining.approval import record_manual_promotion, record_manual_rollback
from churnops.retraining.context import who
from churnops.store.store import PredictionStore

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class AliasMove:
    version: str  # the champion now
    previous: str | None  # the champion before
    not_recorded: str | None = None  # why the decision row is missing, when it is


def _version_of(found: object | None) -> str | None:
    version = getattr(found, "version", None)
    return None if version is None else str(version)


def promote_by_hand(
    client: MlflowClient, store_url: str, *, name: str, version: str, why: str
) -> AliasMove:
    """Make `version` champion for a person and record who approved it."""
    from churnops.modeling import registry

    before = _version_of(registry.alias_version(client, name, registry.CHAMPION))
    promoted = str(registry.promote(client, name=name, version=version, why=why).version)
    problem = _record(
        store_url,
        lambda store: record_manual_promotion(
            store, model_name=name, version=promoted, from_version=before, actor=who(), why=why
        ),
    )
    return AliasMove(promoted, before, problem)


def rollback_by_hand(client: MlflowClient, store_url: str, *, name: str, why: str) -> AliasMove:
    """Give the champion alias back for a person and record it."""
    from churnops.modeling import registry

    before = _version_of(registry.alias_version(client, name, registry.CHAMPION))
    restored = str(registry.rollback(client, name=name, why=why).version)
    problem = _record(
        store_url,
        lambda store: record_manual_rollback(
            store, model_name=name, from_version=before, to_version=restored, actor=who(), why=why
        ),
    )
    return AliasMove(restored, before, problem)


def _record(store_url: str, write: Callable[[PredictionStore], object]) -> str | None:
    try:
        with PredictionStore(store_url) as store:
            store.open(create=True)
            write(store)
    except StoreError as exc:
        return f"the change was not recorded in the store: {exc}"
    return None
