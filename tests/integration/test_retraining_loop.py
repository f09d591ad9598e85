"""The continuous-training loop on a synthetic production stream (real MLflow, real store, real
training, real monitor): drift in consecutive windows fires exactly one retraining and the better
challenger is promoted; a second trigger inside the cooldown is skipped with its reason; a
challenger trained on shuffled labels is rejected with reasons; a promoted champion that then
degrades is rolled back; the backtest names the windows; approval records who.

The tests tell one story in file order over one module-scoped world (training is the slow part).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.data.load import load_training_table
from churnops.modeling.lineage import read_manifest
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.registry import CHAMPION, alias_version
from churnops.modeling.tracking import configure_tracking, ensure_experiment
from churnops.modeling.train import run_training
from churnops.retraining import run
from churnops.retraining.challenger import Challenger, train_on, training_data
from churnops.retraining.context import loop_context
from churnops.retraining.gate import GateVerdict
from churnops.retraining.judge import more_blocking_reasons, production_gate
from churnops.retraining.loop import conclude, start
from churnops.retraining.policy import ChampionState, forced_trigger
from churnops.retraining.rollback import watch_rollback
from churnops.settings import Settings
from churnops.store import PredictionStore
from churnops.store.decisions import read_decisions
from tests.support.models import make_settings
from tests.support.retraining import crafted_check, day_rows, record_check, store_day

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "churn-model"
DAYS, DRIFT_FROM = 8, 3


@dataclass
class World:
    settings: Settings
    client: MlflowClient
    now: datetime
    drift_flags: list[bool]
    state: dict[str, object] = field(default_factory=dict)

    def decisions(self) -> list:
        with PredictionStore(self.settings.resolved_database_url()) as store:
            return read_decisions(store, model_name=NAME)


def loop_settings(home: Path) -> Settings:
    settings = make_settings(home, candidates=["xgboost"], cv_folds=3)
    settings.monitoring.dataset_drift_share = 0.15  # 4 of the demo's 19 features drift
    r = settings.retraining
    r.triggers.drift_windows = 2
    r.triggers.max_champion_age_days = None
    r.triggers.new_labelled_share = None
    r.gate.production_window_days = 2
    r.gate.bootstrap_samples = 200
    # The injected concept shift makes long-tenure customers leave and moves everyone to
    # month-to-month: it reverses the bundled config's tenure direction and degrades the One-year
    # contract segment by design. A person would allow that; the loop tests do, and
    # test_the_retraining_gate_refuses_what_validation_refuses checks the gate without it.
    settings.validation.allow = ["direction", "segment_regression"]
    return settings


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Champion v1 on the demo table, then 8 days of traffic (drift and concept shift from day 3),
    half of it labelled, and one stored monitoring check per day."""
    settings = loop_settings(tmp_path_factory.mktemp("retraining"))
    client = configure_tracking(settings)
    table, schema = load_training_table(settings.data)
    run_training(
        table,
        schema=schema,
        settings=settings,
        client=client,
        experiment_id=ensure_experiment(client, settings),
    )
    scorer = load_scorer(f"models:/{NAME}@{CHAMPION}")[0]
    now = datetime.now(UTC).replace(microsecond=0)
    flags = []
    with PredictionStore(settings.resolved_database_url()) as store:
        store.create()
        for day in range(DAYS):
            begin = now - timedelta(days=DAYS - day)
            rows = day_rows(table, day=day, drift=day >= DRIFT_FROM, seed=11)
            window = store_day(store, rows, scorer, start=begin, version="1", model_name=NAME)
            flags.append(
                record_check(
                    store,
                    window,
                    scorer,
                    end=begin + timedelta(days=1),
                    version="1",
                    model_name=NAME,
                    monitoring=settings.monitoring,
                )
            )
    return World(settings, client, now, flags)


def test_drift_in_consecutive_windows_fires_one_retraining_and_the_better_challenger_wins(
    world: World,
) -> None:
    assert world.drift_flags[:DRIFT_FROM] == [False] * DRIFT_FROM  # the monitor itself sees it
    assert all(world.drift_flags[DRIFT_FROM:])

    check = run.check(world.settings, now=world.now)
    assert check.policy.action == "retrain"
    # the concept shift shows in the realised ROC-AUC too; performance is the most urgent
    assert [t.name for t in check.policy.triggers] == [
        "performance",
        "dataset_drift",
        "prediction_drift",
    ]
    cli = CliRunner().invoke(app, ["retrain", "--check", "--json"], env=env_for(world))
    assert cli.exit_code == 0, cli.output
    shown = json.loads(cli.stdout.strip().splitlines()[-1])
    assert (shown["action"], shown["champion_version"]) == ("retrain", "1")
    assert not read_started(world)  # --check records nothing

    report = run.retrain(world.settings, now=world.now)
    assert report.action == "promoted", report.message
    started, promoted = report.decisions
    assert started.outcome == "started" and started.trigger == "performance"
    assert promoted.to_version == "2" and promoted.from_version == "1"
    gate = promoted.evidence["gate"]
    assert gate["primary"] == "production"
    production = gate["comparisons"][0]
    assert production["challenger"]["roc_auc"] > production["champion"]["roc_auc"] + 0.05
    assert production["lower_bound"] > 0
    data = promoted.evidence["data"]
    assert data["rows"]["production"] == 6 * 300  # labelled days 0-5; the last 2 judge
    assert 0 < data["shares"]["production"] < 1
    assert str(alias_version(world.client, NAME, CHAMPION).version) == "2"
    # The new version's lineage names both sources; the production rows are kept for verify.
    manifest = read_manifest(world.client, name=NAME, version="2")
    roles = {source.role: source for source in manifest.sources}
    assert roles["production"].rows == 6 * 300 and roles["production"].artifact
    assert roles["production"].window_end == data["production_window"][1]
    assert roles["table"].rows + roles["production"].rows == manifest.data_rows

    again = run.retrain(world.settings, now=world.now + timedelta(minutes=5))
    assert again.action == "none"  # v1's windows were acted on; v2 has no checks yet
    assert len(read_started(world)) == 1


def read_started(world: World) -> list:
    return [d for d in world.decisions() if d.outcome == "started"]


def test_a_second_trigger_inside_the_cooldown_is_skipped_with_its_reason(world: World) -> None:
    with PredictionStore(world.settings.resolved_database_url()) as store:
        for hours in (1, 2):
            crafted_check(
                store,
                end=world.now + timedelta(hours=hours),
                version="2",
                model_name=NAME,
                dataset_drift=True,
            )
    report = run.retrain(world.settings, now=world.now + timedelta(hours=3))
    assert report.action == "skipped"
    assert report.message.startswith("cooldown: the last retraining started 3.0 h ago")
    (skipped,) = [d for d in world.decisions() if d.outcome == "skipped"]
    assert skipped.trigger == "dataset_drift"
    assert skipped.evidence["reason"] == report.message
    again = run.retrain(world.settings, now=world.now + timedelta(hours=3, minutes=1))
    assert again.action == "skipped" and not again.decisions  # recorded once per window
    assert len(read_started(world)) == 1


def test_a_challenger_trained_on_shuffled_labels_is_rejected_with_reasons(world: World) -> None:
    now = world.now + timedelta(hours=4)
    with loop_context(world.settings, now=now) as ctx:
        champion = ChampionState(NAME, "2", world.now, None)
        started = start(ctx, forced_trigger(now, "test"), champion)
        assert started is not None
        data = training_data(ctx)
        target = data.schema.target
        shuffled = data.frame.assign(
            **{target: np.random.default_rng(0).permutation(data.frame[target].to_numpy())}
        )
        challenger = train_on(ctx, replace(data, frame=shuffled))
        verdict = production_gate(ctx, challenger)
        decision = conclude(ctx, started, challenger, verdict)
    assert decision.outcome == "rejected"
    reasons = decision.evidence["reasons"]
    assert any("not better by" in r for r in reasons)
    assert any("paired bootstrap lower bound" in r for r in reasons)
    assert str(alias_version(world.client, NAME, CHAMPION).version) == "2"
    tags = world.client.get_model_version(NAME, challenger.version).tags
    assert tags["churnops.gate"] == "held" and "not better by" in tags["churnops.gate_reason"]
    world.state["shuffled"] = challenger


def test_a_promoted_champion_that_degrades_is_rolled_back_automatically(world: World) -> None:
    with loop_context(world.settings, now=world.now + timedelta(hours=5)) as ctx:
        assert watch_rollback(ctx) is None  # no labelled v2 traffic yet: nothing to judge
    table, _ = load_training_table(world.settings.data)
    v2 = load_scorer(f"models:/{NAME}/2")[0]
    with PredictionStore(world.settings.resolved_database_url()) as store:
        rows = day_rows(table, day=40, drift=True, seed=11)
        rows["churn"] = np.where(rows["tenure"] > 30, "No", "Yes")  # the concept flips back
        store_day(
            store, rows, v2, start=world.now + timedelta(hours=5), version="2", model_name=NAME
        )
    report = run.retrain(world.settings, now=world.now + timedelta(days=1, hours=6))
    assert report.action == "rolled_back"
    (rolled,) = report.decisions
    assert (rolled.from_version, rolled.to_version) == ("2", "1")
    assert rolled.evidence["observed"]["basis"] == "realised"
    assert "below the previous champion's" in rolled.evidence["reason"]
    assert str(alias_version(world.client, NAME, CHAMPION).version) == "1"
    later = run.retrain(world.settings, now=world.now + timedelta(days=1, hours=7))
    assert later.action != "rolled_back"  # once


def test_the_backtest_names_the_windows_that_would_have_triggered(world: World) -> None:
    replayed = run.backtest(world.settings, since=world.now - timedelta(days=DAYS + 1))
    retrains = [r for r in replayed if r.action == "retrain"]
    first_drift_end = world.now - timedelta(days=DAYS - DRIFT_FROM - 1)
    # the realised drop fires on the first drifted window (no hysteresis for labels)
    assert retrains[0].window == first_drift_end.isoformat(timespec="seconds")
    assert retrains[0].trigger == "performance"
    assert "realised ROC-AUC" in retrains[0].reason
    # one a day (the cooldown is 24 h), until the monthly budget of 4 is spent
    ends = [first_drift_end + timedelta(days=d) for d in range(4)]
    assert [r.window for r in retrains] == [e.isoformat(timespec="seconds") for e in ends]
    skipped = [r for r in replayed if r.action == "skip"]
    assert skipped and all(r.reason.startswith("limit: 4 retrainings") for r in skipped)
    result = CliRunner().invoke(app, ["retrain", "--backtest"], env=env_for(world))
    assert result.exit_code == 2 and "--backtest needs --since" in result.output


def env_for(world: World) -> dict[str, str]:
    s = world.settings
    return {
        "CHURNOPS_HOME": s.home,
        "CHURNOPS_TRACKING_URI": s.resolved_tracking_uri(),
        "CHURNOPS_DATABASE_URL": s.resolved_database_url(),
        "CHURNOPS_CONFIG": str(Path(s.home) / "absent.yaml"),
    }


def test_require_approval_holds_the_challenger_and_models_promote_records_who(world: World) -> None:
    challenger = world.state["shuffled"]
    assert isinstance(challenger, Challenger)
    settings = world.settings.model_copy(deep=True)
    settings.retraining.require_approval = True
    now = world.now + timedelta(days=2)
    with loop_context(settings, now=now) as ctx:
        started = start(ctx, forced_trigger(now, "test"), ChampionState(NAME, "1", None, None))
        assert started is not None
        held = conclude(
            ctx, started, challenger, GateVerdict(True, ["passed (forced for the test)"])
        )
    assert held.outcome == "held" and held.evidence["awaiting_approval"] is True
    assert str(alias_version(world.client, NAME, CHAMPION).version) == "1"

    result = CliRunner().invoke(
        app,
        ["models", "promote", challenger.version, "--why", "reviewed the card"],
        env=env_for(world),
    )
    assert result.exit_code == 0, result.output
    (approved,) = [d for d in world.decisions() if d.trigger == "approval"]
    assert (approved.outcome, approved.trigger, approved.actor) == (
        "promoted",
        "approval",
        getpass.getuser(),
    )
    assert approved.to_version == challenger.version and approved.from_version == "1"
    assert approved.evidence["reasons"] == [f"approved by {getpass.getuser()}: reviewed the card"]


def test_the_retraining_gate_refuses_what_validation_refuses(world: World) -> None:
    """Without the overrides, a challenger trained on the shifted concept is refused by the
    production gate with the validation's own reasons (read from what its training logged)."""
    strict = world.settings.model_copy(deep=True)
    strict.validation.allow = []
    now = world.now + timedelta(hours=6)
    with loop_context(strict, now=now) as ctx:
        champion = ChampionState(NAME, "2", world.now, None)
        started = start(ctx, forced_trigger(now, "validation test"), champion)
        assert started is not None
        challenger = train_on(ctx, training_data(ctx))
        reasons = more_blocking_reasons(ctx, challenger)
        decision = conclude(ctx, started, challenger, production_gate(ctx, challenger))
    assert any("direction tenure" in r for r in reasons), reasons
    assert decision.outcome == "rejected"
    assert any("direction tenure" in r for r in decision.evidence["reasons"])
    strict.validation.enabled = False
    with loop_context(strict, now=now) as ctx:
        assert more_blocking_reasons(ctx, challenger) == []  # validation off: no objection
