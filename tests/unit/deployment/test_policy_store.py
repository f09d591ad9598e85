"""The policy row: compare-and-set, counters from many workers, decisions with evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnops.deployment import controller
from churnops.errors import DeploymentError
from churnops.settings import DeploymentSettings
from churnops.store import PredictionStore, read_decisions
from churnops.store.deployment import add_counters, read_policy, save_policy


@pytest.fixture
def store(tmp_path: Path) -> PredictionStore:
    s = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    s.create()
    return s


def _policy(mode: str = "canary") -> controller.Policy:
    return controller.new_policy(
        model_name="m", mode=mode, champion_version="1", challenger_version="2",
        settings=DeploymentSettings(),
    )  # fmt: skip


def test_compare_and_set_lets_one_of_two_writers_win(store: PredictionStore) -> None:
    saved = controller.start(store, _policy())
    assert saved.revision == 1 and saved.weight == 5.0
    a = save_policy(store, saved.changed(weight=25.0), expected_revision=1)
    b = save_policy(store, saved.changed(weight=50.0), expected_revision=1)
    assert a is not None and b is None
    assert read_policy(store, "m").weight == 25.0


def test_counters_add_up_and_survive_a_policy_change(store: PredictionStore) -> None:
    saved = controller.start(store, _policy())
    for _ in range(3):
        add_counters(
            store,
            model_name="m",
            deployment_id=saved.deployment_id,
            counts={"challenger_errors": 2},
        )
    stepped = save_policy(store, saved.changed(weight=25.0), expected_revision=1)
    assert stepped is not None and stepped.challenger_errors == 6
    add_counters(store, model_name="m", deployment_id="another", counts={"challenger_errors": 5})
    assert read_policy(store, "m").challenger_errors == 6


def test_start_refuses_a_second_deployment_and_rollback_is_recorded(store: PredictionStore) -> None:
    controller.start(store, _policy())
    with pytest.raises(DeploymentError, match="running"):
        controller.start(store, _policy("shadow"))
    events: list[dict[str, object]] = []
    controller.rollback(store, model_name="m", reason="latency", notify=events.append)
    assert read_policy(store, "m").mode == "none"
    decisions = read_decisions(store, kind="deployment")
    assert [d.outcome for d in decisions] == ["rolled_back", "started"]
    assert decisions[0].evidence["reason"] == "latency"
    assert events[0]["outcome"] == "rolled_back"
    with pytest.raises(DeploymentError, match="no deployment"):
        controller.switch(store, model_name="m")


def test_steps_must_grow() -> None:
    with pytest.raises(DeploymentError, match="grow"):
        controller.new_policy(
            model_name="m", mode="canary", champion_version="1", challenger_version="2",
            settings=DeploymentSettings(), steps=[50.0, 5.0],
        )  # fmt: skip
