"""Two schedulers evaluating the policy at the same moment against one Postgres store start ONE
retraining: the (trigger, window) idempotency key is enforced by the database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from churnops.retraining.context import loop_context
from churnops.retraining.loop import evaluate_policy, start
from churnops.store import PredictionStore
from churnops.store.decisions import Decision, read_decisions
from tests.support.models import TrainedModel
from tests.support.retraining import crafted_check
from tests.support.stores import postgres_schema

pytestmark = pytest.mark.integration


def test_two_concurrent_policy_evaluations_on_postgres_start_one_retraining(
    trained_model: TrainedModel,
) -> None:
    version = str(trained_model.outcome.version)
    name = trained_model.settings.registry.model_name
    now = datetime.now(UTC).replace(microsecond=0)
    with postgres_schema("churnops_retrain_race") as url:
        settings = trained_model.settings.model_copy(deep=True)
        settings.database_url = url
        settings.retraining.triggers.drift_windows = 2
        with PredictionStore(url) as store:
            store.create()
            for hours in (2, 1):
                crafted_check(
                    store,
                    end=now - timedelta(hours=hours),
                    version=version,
                    model_name=name,
                    dataset_drift=True,
                )
        both_evaluated = threading.Barrier(2, timeout=60)

        def scheduler(_: int) -> Decision | None:
            with loop_context(settings, now=now, actor="scheduler") as ctx:
                champion, policy = evaluate_policy(ctx)
                assert policy.fire is not None and policy.fire.name == "dataset_drift"
                both_evaluated.wait()  # both saw the trigger before either claims it
                return start(ctx, policy.fire, champion)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(scheduler, range(2)))
        with PredictionStore(url) as store:
            rows = read_decisions(store, model_name=name)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert [d.outcome for d in rows] == ["started"]
    assert (
        rows[0].idempotency_key
        == f"retrain:{name}:dataset_drift:{(now - timedelta(hours=1)).isoformat()}"
    )
