"""The Monitoring page under Streamlit's AppTest against real stores (SQLite and PostgreSQL):
a store seeded with drift shows the open alert and names the drifted feature, an empty store says
so, an unreachable store gets words; the store's SQL aggregates agree with pandas on the rows; and,
on the trained champion, the drill-down and "Check now" (the core `run_monitor`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import mlflow
import pytest
from streamlit.testing.v1 import AppTest

from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.run import RESULT_KIND, run_monitor
from churnops.settings import get_settings
from churnops.store import PredictionStore, queries
from tests.integration.monitor_support import (
    DAYS,
    MODEL_NAME,
    NOW,
    held_out_rows,
    seed_store,
    shifted,
    write_predictions,
)
from tests.support.models import TrainedModel
from tests.support.stores import free_port, postgres_schema
from tests.unit.monitoring.synthetic import build_reference, make_customers

pytestmark = pytest.mark.integration
PAGE = str(Path(__file__).resolve().parents[2] / "src/churnops/dashboard/pages/monitoring.py")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'predictions.db'}"
        return
    with postgres_schema("churnops_app") as url:
        yield url


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings the page reads: a private home, no params file, webhooks off."""
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("CHURNOPS_MONITORING__WEBHOOK_URL", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def synthetic_reference() -> MonitoringReference:
    return build_reference(make_customers(7_000, seed=1))


def run_page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", url)
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in ("error", "warning", "info", "success", "markdown", "caption")
        for e in app.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_drifted_store_shows_the_open_alert_and_names_the_drifted_feature(
    store_url: str,
    app_env: Path,
    synthetic_reference: MonitoringReference,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_store(store_url, synthetic_reference)

    app = run_page(store_url, monkeypatch)

    alerts = [e.value for e in app.error]
    assert any(
        "Open alert" in a and "dataset drift" in a and "monthly_charges" in a for a in alerts
    ), alerts
    assert "Latest check" in texts(app) and "monthly_charges" in texts(app)
    drift = next(df.value for df in app.dataframe if "PSI" in df.value.columns)
    status = dict(zip(drift["feature"], drift["status"], strict=True))
    assert status["monthly_charges"] == "drift" and status["contract"] == "drift"
    assert status["tenure"] == "ok"
    assert len(app.get("plotly_chart")) >= 6  # timeline, heatmap, volume, scores, perf, churn
    assert not app.get("metric")  # business values are not set: nothing priced
    assert "business.value_retained" in texts(app)


def test_business_values_price_the_offers(
    tmp_path: Path,
    app_env: Path,
    synthetic_reference: MonitoringReference,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    rows = seed_store(url, synthetic_reference)
    monkeypatch.setenv("CHURNOPS_BUSINESS__VALUE_RETAINED", "500")
    monkeypatch.setenv("CHURNOPS_BUSINESS__OFFER_COST", "50")
    monkeypatch.setenv("CHURNOPS_BUSINESS__OFFER_SUCCESS_RATE", "0.4")

    app = run_page(url, monkeypatch)

    metrics = {m.label: m.value for m in app.get("metric")}
    flagged = rows["will_churn"].to_numpy()
    assert metrics["Offers at the threshold"] == f"{int(flagged.sum()):,}"
    expected = rows["churn_probability"][flagged].sum() * 0.4 * 500 - flagged.sum() * 50
    assert metrics["Expected value of the offers"] == f"{expected:,.0f}"


def test_empty_store_says_no_predictions_yet(
    store_url: str, app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PredictionStore(store_url) as store:
        store.create()

    app = run_page(store_url, monkeypatch)

    assert "No predictions yet" in app.info[0].value
    assert "/predict" in app.info[0].value and "churnops monitor" in app.info[0].value
    assert not app.get("plotly_chart")


def test_store_never_created_is_empty_not_an_error(
    app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page(f"sqlite:///{tmp_path / 'absent.db'}", monkeypatch)
    assert "No predictions yet" in app.info[0].value


def test_unreachable_store_gets_words_not_a_traceback(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://root@127.0.0.1:{free_port()}/test"

    app = run_page(url, monkeypatch)

    assert "cannot be read right now" in app.error[0].value
    assert "database_url" in app.error[0].value


def test_sql_aggregates_agree_with_pandas_on_the_rows(
    store_url: str, synthetic_reference: MonitoringReference
) -> None:
    rows = seed_store(store_url, synthetic_reference)
    since = NOW - timedelta(days=DAYS + 1)
    with PredictionStore(store_url) as store:
        stored = store.read_predictions(since=since)
        volume = queries.daily_volume(store, since=since, model_name=MODEL_NAME)
        other = queries.daily_volume(store, since=since, model_name="another-model")
        edges = synthetic_reference.profile.numeric["monthly_charges"].bin_edges
        numeric = queries.numeric_feature_counts(store, "monthly_charges", edges, since=since)
        cats = queries.category_feature_counts(store, "contract", since=since)
        status = queries.store_status(store)

    assert len(rows) == len(stored) and not status.empty
    assert status.first == stored["created_at"].min() and status.last == stored["created_at"].max()
    per_day = stored["created_at"].dt.strftime("%Y-%m-%d").value_counts().sort_index()
    counted = dict(zip(volume.days, volume.n, strict=True))
    assert volume.days[0] == since.date().isoformat() and volume.days[-1] == NOW.date().isoformat()
    assert {d: n for d, n in counted.items() if n} == per_day.to_dict()  # the rest are zeros
    assert other.days == volume.days and other.total == 0
    values = stored["monthly_charges"].to_numpy(float)
    assert numeric.at_or_below == [int((values <= e).sum()) for e in edges]
    assert numeric.n_values == len(values)
    assert cats == stored["contract"].value_counts().to_dict()


# -- on the trained champion: drill-down from the registry, and "Check now" ---------------------


@pytest.fixture
def champion_env(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", trained_model.settings.resolved_tracking_uri())
    monkeypatch.setenv("CHURNOPS_MONITORING__REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", url)
    monkeypatch.delenv("CHURNOPS_MONITORING__WEBHOOK_URL", raising=False)
    monkeypatch.delenv("CHURNOPS_SERVING__MODEL_URI", raising=False)
    return url


@pytest.mark.slow
def test_drill_down_and_check_now_on_the_champion(
    trained_model: TrainedModel,
    champion_env: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scorer = trained_model.scorer()
    write_predictions(champion_env, shifted(held_out_rows(trained_model)), scorer, days=2)
    first = run_monitor(get_settings(), window="7d", record=True)  # a stored check to show
    assert first.drift_found

    # The page must find the model through its own settings, not MLflow's global URIs.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    app = run_page(champion_env, monkeypatch)
    assert any("monthly_charges" in e.value for e in app.error)

    app.selectbox[1].select("monthly_charges").run()  # [0] is the period shown
    assert not app.exception, [e.value for e in app.exception]
    assert "no reference" not in texts(app) and "cannot be read" not in texts(app)
    drill = app.get("plotly_chart")[-2]  # the drill-down, just above the business chart
    assert "monthly_charges: reference vs current" in drill.proto.spec
    charts_before = len(app.get("plotly_chart"))

    app.selectbox[2].set_value("7d")
    app.button[0].click().run()  # the form's "Check now"
    assert not app.exception, [e.value for e in app.exception]
    verdict = [e.value for e in app.error if "Drift found" in e.value]
    assert verdict and "monthly_charges" in verdict[0]
    assert any("Stored as monitoring result" in c.value for c in app.caption)
    with PredictionStore(champion_env) as store:
        assert len(store.read_monitoring_results(kind=RESULT_KIND)) == 2
    assert charts_before >= 7
