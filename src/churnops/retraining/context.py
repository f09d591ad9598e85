"""What every step of the loop works with: settings, the open store, the registry, the time."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from churnops.retraining.announce import announce
from churnops.store.decisions import Decision, record_decision
from churnops.store.store import PredictionStore

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from churnops.settings import Settings

KIND = "retraining"


def who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry in some containers
        return "unknown"


@dataclass(frozen=True)
class LoopContext:
    settings: Settings
    store: PredictionStore
    client: MlflowClient
    now: datetime
    actor: str

    @property
    def model_name(self) -> str:
        return self.settings.registry.model_name

    def record(self, decision: Decision) -> Decision | None:
        """Store and announce `decision` (stamped now, by this actor); None when its idempotency
        key was already taken, i.e. another evaluation acted on the same (trigger, window)."""
        stamped = replace(
            decision, created_at=decision.created_at or self.now, actor=decision.actor or self.actor
        )
        decision_id = record_decision(self.store, stamped)
        if decision_id is None:
            return None
        recorded = replace(stamped, id=decision_id)
        announce(recorded, webhook_url=self.settings.monitoring.webhook_url)
        return recorded


@contextmanager
def loop_context(
    settings: Settings,
    *,
    now: datetime | None = None,
    actor: str | None = None,
    read_only: bool = False,
) -> Iterator[LoopContext]:
    """The store and the registry of `settings`; both must exist when `read_only` (a check never
    creates a store), else a missing prediction store is created (decisions are written)."""
    from churnops.modeling.tracking import configure_tracking

    client = configure_tracking(settings, must_exist=read_only)
    store = PredictionStore(settings.resolved_database_url())
    try:
        store.open(create=not read_only)
        yield LoopContext(settings, store, client, now or datetime.now(UTC), actor or who())
    finally:
        store.close()
