"""Deployments through the real API: shadow, canary and blue-green, faulty challengers rolled
back with the reason recorded, stored == served per variant, and two live workers following a
policy change."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from churnops.api import rollout
from churnops.api.app import create_app
from churnops.deployment import controller
from churnops.deployment.routing import routes_to_challenger
from churnops.settings import Settings
from churnops.store import PredictionStore, read_decisions
from churnops.store.deployment import read_policy
from tests.support.api import (
    api_settings,
    churnops_serve,
    example_record,
    serve_env,
    wait_for,
)
from tests.support.deployment import WebhookReceiver
from tests.support.models import TrainedModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHALLENGER = "2"  # served through an injected loader: no second registry version needed


class Faulty:
    """The real scorer, made to raise, return one constant score, or sleep."""

    def __init__(self, inner: Any, kind: str) -> None:
        self._inner, self.kind = inner, kind
        self.threads: list[str] = []  # the thread of each score_records call
        self.sizes: list[int] = []  # and how many records it scored
        self.slow = False  # "turns-slow": every call sleeps 20 ms once this is set

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def score_records(self, records: Any, *, reasons: bool = True) -> Any:
        import numpy as np

        self.threads.append(threading.current_thread().name)
        self.sizes.append(len(records))
        if self.kind == "raises":
            raise RuntimeError("challenger exploded")
        if self.kind == "sleeps":
            time.sleep(0.3)
        if self.kind == "turns-slow" and self.slow:
            time.sleep(0.02)
        scores = self._inner.score_records(records, reasons=reasons)
        n = len(scores.probability)
        if self.kind == "constant":
            return replace(scores, probability=np.full(n, 0.42), will_churn=np.zeros(n, bool))
        if self.kind == "shifted":
            return replace(scores, probability=np.minimum(1.0, scores.probability * 0.9))
        return scores

    def score_rows(self, records: Any) -> Any:
        if self.kind == "raises":
            raise RuntimeError("challenger exploded")
        if self.kind == "sleeps":
            time.sleep(0.3)
        scored = self._inner.score_rows(records)
        if self.kind == "constant":
            return [s._replace(probability=0.42, will_churn=False) for s in scored]
        if self.kind == "shifted":
            return [s._replace(probability=min(1.0, s.probability * 0.9)) for s in scored]
        return scored


@pytest.fixture(scope="module")
def real_scorer(trained_model: TrainedModel) -> Any:
    return trained_model.scorer()


def _app(
    settings: Settings, scorer: Any, kind: str, challengers: list[Faulty] | None = None
) -> Any:
    """The API with `scorer` as champion and a `kind` of Faulty as challenger (each one made is
    appended to `challengers`)."""

    def loader(uri: str) -> tuple[Any, None]:
        if not uri.endswith(f"/{CHALLENGER}"):
            return scorer, None
        challenger = Faulty(scorer, kind)
        if challengers is not None:
            challengers.append(challenger)
        return challenger, None

    return create_app(settings, scorer_loader=loader, resolve_alias=lambda n, a: "1")


def _settings(trained: TrainedModel, tmp_path: Path) -> Settings:
    settings = api_settings(trained, tmp_path)
    settings.deployment.poll_interval_seconds = 0.05
    settings.deployment.evaluate_interval_seconds = 0
    return settings


def _distinct_records(trained: TrainedModel, n: int) -> list[dict[str, Any]]:
    schema = trained.outcome.schema
    columns = [*([schema.id_column] if schema.id_column else []), *schema.feature_names]
    frame = trained.frame[columns].dropna().drop_duplicates(subset=schema.feature_names).head(n)
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _start(settings: Settings, mode: str, **options: Any) -> controller.Policy:
    store = PredictionStore(settings.resolved_database_url())
    store.create()
    try:
        policy = controller.new_policy(
            model_name=settings.registry.model_name, mode=mode, champion_version="1",
            challenger_version=CHALLENGER, settings=settings.deployment, **options,
        )  # fmt: skip
        return controller.start(store, policy)
    finally:
        store.close()


def _following(client: TestClient, mode: str) -> bool:
    return bool(client.get("/deployment").json()["worker"]["mode"] == mode)


def _flushed(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    assert service.writer.flush(timeout=10)


def _rolled_back_policy(settings: Settings, *, timeout: float) -> controller.Policy:
    """The policy once the deployment has been rolled back (mode none), waited for."""
    store = PredictionStore(settings.resolved_database_url())
    try:

        def rolled_back() -> bool:
            found = read_policy(store, settings.registry.model_name)
            return found is not None and found.mode == "none"

        assert wait_for(rolled_back, timeout=timeout)
        policy = read_policy(store, settings.registry.model_name)
        assert policy is not None and policy.mode == "none"
        return policy
    finally:
        store.close()


def _query(settings: Settings, sql: str) -> list[Any]:
    store = PredictionStore(settings.resolved_database_url())
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        store.close()


def test_shadow_scores_are_stored_beside_the_answer_which_stays_the_champions(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    settings = _settings(trained_model, tmp_path)
    record = example_record(trained_model)
    id_column = trained_model.outcome.schema.id_column
    features = {k: v for k, v in record.items() if k != id_column}
    champion_alone = real_scorer.score_rows([features])
    with TestClient(_app(settings, real_scorer, "shifted")) as client:
        _start(settings, "shadow")
        assert wait_for(lambda: _following(client, "shadow"), timeout=10)
        answers = [client.post("/predict", json=record).json() for _ in range(40)]
        assert all(a["model_version"] == "1" for a in answers)
        assert {a["churn_probability"] for a in answers} == {champion_alone[0].probability}
        time.sleep(0.3)
        _flushed(client)
        metrics = client.get("/metrics").text
    rows = _query(
        settings,
        "select p.variant, p.churn_probability, s.churn_probability, s.model_version "
        "from predictions p join shadow_predictions s using (prediction_id)",
    )
    assert len(rows) == 40
    assert {r[0] for r in rows} == {"champion"} and {r[3] for r in rows} == {CHALLENGER}
    assert all(abs(r[2] - min(1.0, r[1] * 0.9)) < 1e-12 for r in rows)
    assert (
        "churnops_variant_predictions_total{risk_level=" in metrics or 'variant="shadow"' in metrics
    )


def _shadow_scoring(client: TestClient) -> str | None:
    return client.get("/deployment").json()["worker"]["shadow_scoring"]


def _shadow_on_the_loop(
    client: TestClient, settings: Settings, made: list[Faulty], **options: Any
) -> tuple[Faulty, str]:
    """Start a shadow deployment, wait until the worker scores it on the event loop; the
    challenger it loaded and the loop's thread name."""
    _start(settings, "shadow", **options)
    assert wait_for(lambda: _following(client, "shadow"), timeout=10)
    assert _shadow_scoring(client) == "event-loop"
    loop_thread = client.portal.call(lambda: threading.current_thread().name)
    return made[-1], loop_thread


def test_a_fast_shadow_challenger_is_scored_on_the_event_loop_not_a_thread(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    """No GIL hand-offs to a thread: the loop scores the shadow between requests."""
    settings = _settings(trained_model, tmp_path)
    records = _distinct_records(trained_model, 30)
    made: list[Faulty] = []
    with TestClient(_app(settings, real_scorer, "shifted", made)) as client:
        assert _shadow_scoring(client) is None  # no deployment
        _start(settings, "shadow")
        assert wait_for(lambda: _following(client, "shadow"), timeout=10)
        assert _shadow_scoring(client) == "event-loop"
        challenger = made[-1]
        probed = len(challenger.threads)
        assert probed >= 1  # the probe at load time
        loop_thread = client.portal.call(lambda: threading.current_thread().name)
        for record in records:
            assert client.post("/predict", json=record).status_code == 200
        client.post("/predict/batch", json={"customers": records})
        time.sleep(0.3)
        _flushed(client)
    shadow_calls = challenger.threads[probed:]
    assert shadow_calls and set(shadow_calls) == {loop_thread}
    stored = _query(settings, "select count(*) from shadow_predictions")[0][0]
    assert stored == 2 * len(records)


def test_the_loop_scores_a_burst_in_slices_and_stores_every_score(
    trained_model: TrainedModel,
    real_scorer: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hand-over's records are scored a slice at a time (here 4 records), one slice between two
    turns of the loop, so a request waits for one slice at most; every score is still stored."""
    monkeypatch.setattr(rollout, "slice_records", lambda seconds_per_record: 4)
    settings = _settings(trained_model, tmp_path)
    records = _distinct_records(trained_model, 40)
    made: list[Faulty] = []
    with TestClient(_app(settings, real_scorer, "shifted", made)) as client:
        challenger, loop_thread = _shadow_on_the_loop(client, settings, made)
        probed = len(challenger.sizes)
        for record in records:
            assert client.post("/predict", json=record).status_code == 200
        time.sleep(0.3)
        _flushed(client)
    sizes, threads = challenger.sizes[probed:], challenger.threads[probed:]
    assert sum(sizes) == len(records)
    assert max(sizes) <= 4  # never a whole hand-over at once
    assert max(sizes) > 1  # but several requests' records a call, not one call each
    assert set(threads) == {loop_thread}
    stored = _query(settings, "select count(*) from shadow_predictions")[0][0]
    assert stored == len(records)


def test_shadow_records_already_past_the_bound_are_dropped_unscored(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    """A 1 µs bound: every record is late when its turn on the loop comes (a hand-over alone
    waits 30 ms), so the loop spends nothing on scores it would discard; they are counted as
    dropped, not as the challenger's fault, and the answers are untouched."""
    settings = _settings(trained_model, tmp_path)
    records = _distinct_records(trained_model, 12)
    made: list[Faulty] = []
    with TestClient(_app(settings, real_scorer, "shifted", made)) as client:
        challenger, _ = _shadow_on_the_loop(client, settings, made, timeout_ms=0.001)
        probed = len(challenger.sizes)
        answers = [client.post("/predict", json=record) for record in records]

        def dropped() -> int:
            return int(client.get("/deployment").json()["worker"]["faults"]["dropped"])

        wait_for(lambda: dropped() >= len(records), timeout=5)
        time.sleep(0.1)  # nothing more to come
        worker = client.get("/deployment").json()["worker"]
    assert all(a.status_code == 200 and a.json()["model_version"] == "1" for a in answers)
    assert worker["faults"]["dropped"] == len(records)
    assert challenger.sizes[probed:] == []  # not one of them scored
    assert worker["faults"]["errors"] == worker["faults"]["timeouts"] == 0
    assert worker["mode"] == "shadow"  # dropping is not a fault: no rollback


def test_a_failure_in_the_loops_shadow_scoring_drops_its_queue_and_scoring_goes_on(
    trained_model: TrainedModel,
    real_scorer: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside the challenger's own call (here: the shadow's bookkeeping raising once), a failure
    is logged, what waited is counted as dropped, and the next requests are scored and stored:
    every record is either stored or counted, none silently lost."""
    real = rollout.Rollout._score_shadow
    failures = {"left": 1}

    def once_broken(self: Any, route: Any, jobs: Any, rows: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("bookkeeping broke")
        return real(self, route, jobs, rows)

    monkeypatch.setattr(rollout.Rollout, "_score_shadow", once_broken)
    settings = _settings(trained_model, tmp_path)
    records = _distinct_records(trained_model, 30)
    with TestClient(_app(settings, real_scorer, "shifted")) as client:
        _start(settings, "shadow")
        assert wait_for(lambda: _following(client, "shadow"), timeout=10)
        for record in records[:10]:
            assert client.post("/predict", json=record).status_code == 200
        time.sleep(0.2)
        for record in records[10:]:
            assert client.post("/predict", json=record).status_code == 200
        time.sleep(0.3)
        _flushed(client)
        dropped = client.get("/deployment").json()["worker"]["faults"]["dropped"]
    stored = _query(settings, "select count(*) from shadow_predictions")[0][0]
    assert failures["left"] == 0 and dropped >= 1
    assert stored >= len(records) - 10  # the later requests were scored
    assert stored + dropped == len(records)


def test_a_shadow_challenger_that_turns_slow_moves_to_the_thread(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    """Three slow slices in a row on the loop and the challenger is scored on the shadow thread
    from then on; its scores are still stored, the answers stay the champion's."""
    settings = _settings(trained_model, tmp_path)
    records = _distinct_records(trained_model, 20)
    made: list[Faulty] = []
    with TestClient(_app(settings, real_scorer, "turns-slow", made)) as client:
        challenger, loop_thread = _shadow_on_the_loop(client, settings, made)
        challenger.slow = True
        before = len(challenger.threads)
        answers = []
        for record in records:
            answers.append(client.post("/predict", json=record).json())
            time.sleep(0.04)  # one hand-over (30 ms), so one slice, a request
        assert wait_for(lambda: _shadow_scoring(client) == "thread", timeout=5)
        time.sleep(0.3)
        _flushed(client)
        worker = client.get("/deployment").json()["worker"]
    assert all(a["model_version"] == "1" for a in answers)
    calls = challenger.threads[before:]  # one a slice
    assert calls[:3] == [loop_thread] * 3  # three slow slices on the loop, then the thread
    assert len(calls) > 3 and set(calls[3:]) == {"shadow"}
    assert worker["faults"]["timeouts"] == 0  # 20 ms is inside the 100 ms bound: not a fault
    stored = _query(settings, "select count(*) from shadow_predictions")[0][0]
    assert stored == len(records)


@pytest.mark.parametrize(
    ("kind", "why"),
    [("raises", "raised RuntimeError"), ("constant", "constant score"), ("sleeps", "bound")],
)
@pytest.mark.serial  # asserts a time: run alone, not beside another test
def test_a_faulty_shadow_never_touches_the_answer_and_is_rolled_back(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path, kind: str, why: str
) -> None:
    settings = _settings(trained_model, tmp_path)
    hook = WebhookReceiver()
    settings.monitoring.webhook_url = hook.url
    records = _distinct_records(trained_model, 60)
    id_column = trained_model.outcome.schema.id_column
    features = [{k: v for k, v in r.items() if k != id_column} for r in records]
    expected = [s.probability for s in real_scorer.score_rows(features)]
    with TestClient(_app(settings, real_scorer, kind)) as client:
        _start(settings, "shadow", timeout_ms=50.0, thresholds={"constant_after": 20})
        assert wait_for(lambda: _following(client, "shadow"), timeout=10)
        # the load-time probe keeps one that raises or sleeps off the event loop
        assert _shadow_scoring(client) == ("event-loop" if kind == "constant" else "thread")
        slowest = 0.0
        for record, wanted in zip(records, expected, strict=True):
            started = time.perf_counter()
            answer = client.post("/predict", json=record)
            slowest = max(slowest, time.perf_counter() - started)
            assert answer.status_code == 200
            assert answer.json()["churn_probability"] == wanted
            assert answer.json()["model_version"] == "1"
            time.sleep(0.01)
        assert slowest < 0.1  # the 300 ms sleeper never delays an answer
        policy = _rolled_back_policy(settings, timeout=10)
    store = PredictionStore(settings.resolved_database_url())
    try:
        assert why in (policy.reason or "")
        decision = read_decisions(store, kind="deployment")[0]
        assert decision.outcome == "rolled_back" and why in decision.evidence["reason"]
        assert decision.actor == "auto"
        assert wait_for(lambda: len(hook.received) >= 1, timeout=10)
        announced = hook.received[-1]
        assert announced["kind"] == "deployment" and announced["outcome"] == "rolled_back"
        assert why in announced["reason"] and announced["challenger_version"] == CHALLENGER
    finally:
        store.close()
        hook.close()


def test_canary_routes_each_customer_by_their_bucket_and_stores_the_variant(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    settings = _settings(trained_model, tmp_path)
    record = example_record(trained_model)
    id_column = trained_model.outcome.schema.id_column
    assert id_column is not None
    with TestClient(_app(settings, real_scorer, "shifted")) as client:
        policy = _start(settings, "canary", weight=50.0, steps=[50.0, 100.0])
        assert wait_for(lambda: _following(client, "canary"), timeout=10)
        served: dict[str, set[str]] = {}
        for i in range(200):
            for _ in range(2):  # sticky: the same customer twice, the same variant
                body = {**record, id_column: f"c-{i}"}
                answer = client.post("/predict", json=body).json()
                served.setdefault(f"c-{i}", set()).add(answer["model_version"])
        _flushed(client)
    assert all(len(v) == 1 for v in served.values())
    for customer, versions in served.items():
        wanted = routes_to_challenger(customer, salt=policy.salt, weight=50.0)
        assert versions == {CHALLENGER if wanted else "1"}
    rows = _query(settings, "select customer_id, variant, model_version from predictions")
    assert len(rows) == 400
    for customer, variant, version in rows:
        assert (
            (variant == "challenger")
            == (version == CHALLENGER)
            == (served[customer] == {CHALLENGER})
        )


def test_a_canary_challenger_with_one_score_for_everyone_is_rolled_back(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    """The canary's hot path checks the challenger's scores inline (check_score's usual case
    without its frame): a run of equal scores for different customers still ends the canary."""
    settings = _settings(trained_model, tmp_path)
    records = _distinct_records(trained_model, 40)
    with TestClient(_app(settings, real_scorer, "constant")) as client:
        _start(settings, "canary", weight=100.0, steps=[100.0], thresholds={"constant_after": 20})
        assert wait_for(lambda: _following(client, "canary"), timeout=10)
        for record in records:
            assert client.post("/predict", json=record).status_code == 200
        policy = _rolled_back_policy(settings, timeout=10)
        assert "constant score" in (policy.reason or "")


def test_blue_green_switch_and_back_under_load_fails_nothing_and_stores_what_it_served(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    settings = _settings(trained_model, tmp_path)
    record = example_record(trained_model)
    served: Counter[str] = Counter()
    failures: list[Any] = []
    stop = threading.Event()
    with TestClient(_app(settings, real_scorer, "shifted")) as client:
        _start(settings, "blue-green")
        assert wait_for(lambda: _following(client, "blue-green"), timeout=10)

        def load() -> None:
            while not stop.is_set():
                answer = client.post("/predict", json=record)
                if answer.status_code != 200:
                    failures.append(answer.status_code)
                else:
                    served[answer.json()["model_version"]] += 1

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        store = PredictionStore(settings.resolved_database_url())
        try:
            for _ in range(2):  # switch to the challenger, and back
                time.sleep(0.5)
                controller.switch(store, model_name=settings.registry.model_name)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            store.close()
        _flushed(client)
    assert failures == []
    assert served["1"] > 0 and served[CHALLENGER] > 0
    stored = {
        (variant, version): n
        for variant, version, n in _query(
            settings, "select variant, model_version, count(*) from predictions group by 1, 2"
        )
    }
    assert stored == {
        ("champion", "1"): served["1"],
        ("challenger", CHALLENGER): served[CHALLENGER],
    }


def test_two_live_workers_both_follow_a_policy_change(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    env = serve_env(settings, tmp_path, CHURNOPS_DEPLOYMENT__EVALUATE_INTERVAL_SECONDS="0")
    with churnops_serve(env, "--workers", "2") as server:
        store = PredictionStore(settings.resolved_database_url())
        try:
            # the champion itself as the challenger: what matters here is who follows the policy
            policy = controller.new_policy(
                model_name=settings.registry.model_name, mode="shadow", champion_version=None,
                challenger_version="1", settings=settings.deployment,
            )  # fmt: skip
            changed = time.monotonic()
            controller.start(store, policy)
            seen: dict[int, float] = {}

            def both_follow() -> bool:
                # a new connection each time lets the kernel pick either worker
                view = httpx.get(server.url + "/deployment", timeout=5).json()["worker"]
                if view["mode"] == "shadow" and view["pid"] not in seen:
                    seen[view["pid"]] = time.monotonic() - changed
                return len(seen) == 2

            assert wait_for(both_follow, timeout=30, interval=0.01)
        finally:
            store.close()
    assert len(seen) == 2


def test_the_api_steps_a_good_shadow_challenger_to_canary_on_its_own(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    settings = _settings(trained_model, tmp_path)
    settings.deployment.evaluate_interval_seconds = 0.2
    records = _distinct_records(trained_model, 60)
    with TestClient(_app(settings, real_scorer, "shifted")) as client:
        _start(settings, "shadow", steps=[50.0, 100.0], thresholds={"min_requests": 30})
        assert wait_for(lambda: _following(client, "shadow"), timeout=10)
        for record in records:
            assert client.post("/predict", json=record).status_code == 200
        assert wait_for(lambda: _following(client, "canary"), timeout=20)
        view = client.get("/deployment").json()
    assert view["policy"]["weight"] == 50.0 and view["policy"]["mode"] == "canary"
    store = PredictionStore(settings.resolved_database_url())
    try:
        decision = read_decisions(store, kind="deployment")[0]
        assert (decision.outcome, decision.actor) == ("canary", "auto")
        evidence = decision.evidence["comparison"]
        assert evidence["paired"] >= 30 and evidence["agreement"] >= 0.8
    finally:
        store.close()


def test_a_challenger_that_cannot_be_loaded_is_rolled_back(
    trained_model: TrainedModel, real_scorer: Any, tmp_path: Path
) -> None:
    settings = _settings(trained_model, tmp_path)

    def loader(uri: str) -> tuple[Any, None]:
        if uri.endswith(f"/{CHALLENGER}"):
            raise OSError("artifact missing")
        return real_scorer, None

    app = create_app(settings, scorer_loader=loader, resolve_alias=lambda n, a: "1")
    with TestClient(app) as client:
        _start(settings, "canary", weight=50.0, steps=[50.0, 100.0])
        policy = _rolled_back_policy(settings, timeout=15)
        assert "artifact missing" in (policy.reason or "")
        assert client.post("/predict", json=example_record(trained_model)).status_code == 200
