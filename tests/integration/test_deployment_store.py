"""Deployments over the store on SQLite and a real Postgres: racing workers change the policy
once, the comparison's figures match sklearn, and the automatic judgement steps a good
challenger shadow -> canary -> champion and rolls a worse one back, with the evidence recorded."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from churnops.deployment import controller
from churnops.deployment.compare import compare
from churnops.settings import BusinessSettings
from churnops.store import PredictionStore, read_decisions
from churnops.store.deployment import (
    add_counters,
    read_policy,
    save_policy,
)
from tests.support.deployment import seed_traffic, start_policy
from tests.support.stores import postgres_schema

pytestmark = pytest.mark.integration
BUSINESS = BusinessSettings(value_retained=500.0, offer_cost=50.0, offer_success_rate=0.3)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionStore]:
    if request.param == "sqlite":
        store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
        store.create()
        yield store
        store.close()
        return
    with postgres_schema("churnops_deploy") as url:
        store = PredictionStore(url)
        store.create()
        yield store
        store.close()


def test_racing_workers_change_the_policy_once_and_their_counts_add_up(
    store: PredictionStore,
) -> None:
    policy = start_policy(store, "canary")

    def step(_: int) -> bool:
        return (
            save_policy(store, policy.changed(weight=25.0), expected_revision=policy.revision)
            is not None
        )

    def count(_: int) -> None:
        add_counters(
            store,
            model_name="m",
            deployment_id=policy.deployment_id,
            counts={"challenger_timeouts": 3},
        )

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(step, range(8)))
        list(pool.map(count, range(8)))
    assert sum(wins) == 1
    final = read_policy(store, "m")
    assert final is not None and final.revision == policy.revision + 1
    assert final.challenger_timeouts == 24


def test_shadow_comparison_matches_sklearn_with_intervals(store: PredictionStore) -> None:
    policy = start_policy(store, "shadow")
    data = seed_traffic(store, n=400, challenger_skill=2.0, shadow=True)
    result = compare(store, policy, business=BUSINESS, bootstrap_samples=100)
    champ, chall = result.variants["champion"], result.variants["challenger"]
    assert champ.requests == chall.requests == result.paired == 400
    assert champ.labels == chall.labels == 400
    assert champ.roc_auc is not None and chall.roc_auc is not None
    assert champ.roc_auc.value == pytest.approx(roc_auc_score(data["y"], data["champion"]))
    assert chall.roc_auc.value == pytest.approx(roc_auc_score(data["y"], data["challenger"]))
    assert champ.roc_auc.low < champ.roc_auc.value < champ.roc_auc.high
    assert chall.pr_auc is not None
    assert chall.pr_auc.value == pytest.approx(
        average_precision_score(data["y"], data["challenger"])
    )
    assert champ.brier is not None
    assert champ.brier.value == pytest.approx(np.mean((data["champion"] - data["y"]) ** 2))
    agreement = np.mean((data["champion"] >= 0.5) == (data["challenger"] >= 0.5))
    assert result.agreement == pytest.approx(agreement)
    assert champ.profit is not None and result.psi is not None and result.js is not None
    assert champ.p50_ms == pytest.approx(0.103, abs=0.004)


def test_a_good_challenger_steps_shadow_canary_champion(store: PredictionStore) -> None:
    promoted: list[tuple[str, str]] = []
    announced: list[dict[str, Any]] = []

    def promote_alias(name: str, version: str, why: str) -> None:
        promoted.append((name, version))

    def judge() -> controller.StepOutcome:
        return controller.evaluate(
            store, model_name="m", business=BUSINESS, promote_alias=promote_alias,
            notify=announced.append, bootstrap_samples=50,
        )  # fmt: skip

    start_policy(store, "shadow", steps=[50.0, 100.0])
    assert judge().action == "hold"  # nothing seen yet
    seed_traffic(store, n=300, challenger_skill=2.0, shadow=True)
    assert judge().action == "step"
    policy = read_policy(store, "m")
    assert policy is not None and (policy.mode, policy.weight) == ("canary", 50.0)
    for seed in (2, 3):
        seed_traffic(store, n=300, challenger_skill=2.0, shadow=False, seed=seed)
        outcome = judge()
        assert outcome.action in ("step", "promote"), outcome.reason
    assert promoted == [("m", "2")]
    final = read_policy(store, "m")
    assert final is not None and final.mode == "none" and final.champion_version == "2"
    outcomes = [d.outcome for d in read_decisions(store, kind="deployment")]
    assert outcomes == ["promoted", "stepped", "canary", "started"]
    assert [a["outcome"] for a in announced] == ["canary", "stepped", "promoted"]


def test_a_worse_challenger_is_rolled_back_with_its_evidence(store: PredictionStore) -> None:
    start_policy(store, "shadow", thresholds={"min_agreement": 0.0, "max_psi": 10.0})
    seed_traffic(store, n=600, challenger_skill=0.2, shadow=True)
    outcome = controller.evaluate(
        store, model_name="m", business=BUSINESS, promote_alias=None, bootstrap_samples=100
    )
    assert outcome.action == "rollback" and "quality regression" in outcome.reason
    decision = read_decisions(store, kind="deployment")[0]
    assert decision.outcome == "rolled_back"
    evidence = decision.evidence["comparison"]["variants"]
    assert evidence["challenger"]["roc_auc"]["high"] < evidence["champion"]["roc_auc"]["value"]


def test_shadow_scores_read_back_as_written_and_once(store: PredictionStore) -> None:
    from sqlalchemy import select

    from churnops.store.deployment import SHADOWS, write_shadow_predictions

    row = {
        "prediction_id": "p-1", "created_at": "2026-12-03T06:00:00.123456+00:00",
        "model_name": "m", "model_version": 2, "churn_probability": 0.25, "will_churn": True,
        "risk_level": "low", "latency_us": 17,
    }  # fmt: skip
    assert write_shadow_predictions(store, [row, {**row, "churn_probability": 0.9}]) == 2
    with store.engine.connect() as conn:
        stored = conn.execute(select(SHADOWS)).mappings().all()
    assert len(stored) == 1
    got = dict(stored[0])
    assert got["created_at"].isoformat() == "2026-12-03T06:00:00.123456+00:00"
    assert (got["model_version"], got["churn_probability"], got["will_churn"]) == ("2", 0.25, True)
    assert got["latency_us"] == 17


def test_one_of_many_workers_takes_the_evaluation_lease(store: PredictionStore) -> None:
    from churnops.store.deployment import claim_evaluation

    policy = start_policy(store, "shadow")

    def claim(_: int) -> bool:
        return claim_evaluation(
            store, model_name="m", deployment_id=policy.deployment_id, every_seconds=60
        )

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(claim, range(8))) == 1
    assert claim_evaluation(
        store, model_name="m", deployment_id=policy.deployment_id, every_seconds=0
    )
    assert read_policy(store, "m") is not None  # the lease column never reaches the Policy


def test_the_writers_plain_shadow_rows_read_back_as_the_mapping_path_writes(
    store: PredictionStore,
) -> None:
    from sqlalchemy import select

    from churnops.store.deployment import SHADOWS, write_shadow_predictions, write_shadow_rows

    created = ["2026-12-03T06:00:00.123456+00:00", "2026-12-03T07:30:00.000001+02:00"]
    rows = [
        (f"p-{i}", created[i % 2], "m", 2, 0.125 * i, i % 2 == 1, "low", 10 + i) for i in range(4)
    ]
    assert write_shadow_rows(store, rows) == 4
    as_mappings = [
        dict(zip(("prediction_id", "created_at", "model_name", "model_version",
                  "churn_probability", "will_churn", "risk_level", "latency_us"), r, strict=True))
        for r in rows
    ]  # fmt: skip
    for mapping in as_mappings:
        mapping["prediction_id"] = "q" + mapping["prediction_id"]
    write_shadow_predictions(store, as_mappings)
    with store.engine.connect() as conn:
        stored = {r["prediction_id"]: dict(r) for r in conn.execute(select(SHADOWS)).mappings()}
    assert len(stored) == 8
    for i in range(4):
        plain, mapped = stored[f"p-{i}"], stored[f"qp-{i}"]
        assert {k: v for k, v in plain.items() if k != "prediction_id"} == {
            k: v for k, v in mapped.items() if k != "prediction_id"
        }
    assert stored["p-1"]["created_at"].isoformat() == "2026-12-03T05:30:00.000001+00:00"
    assert (stored["p-1"]["model_version"], stored["p-1"]["will_churn"]) == ("2", True)
