"""The app's Customer, Batch and Service pages under Streamlit's AppTest, against a live API.

The API is a real uvicorn server on loopback serving the trained champion, with its prediction
store on SQLite or on Postgres, seeded with predictions before the pages are opened.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from churnops.api.app import create_app
from churnops.apikeys import hash_key
from churnops.dashboard.batch import plan_columns, score_upload
from churnops.dashboard.client import ApiClient
from churnops.datasets import demo_path
from churnops.errors import ModelNotFoundError
from tests.support.api import (
    api_settings,
    example_record,
    live_server,
    postgres_database,
)
from tests.support.models import TrainedModel
from tests.support.stores import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGES = Path(__file__).resolve().parents[2] / "src" / "churnops" / "dashboard" / "pages"
KEY = "app-test-key-0123456789"
SEEDED = 25


@dataclass
class LiveApi:
    url: str
    info: dict[str, Any]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_api(
    request: pytest.FixtureRequest,
    trained_model: TrainedModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveApi]:
    """The champion on a live server whose store holds SEEDED predictions; keys required."""
    with ExitStack() as stack:
        settings = api_settings(trained_model, tmp_path_factory.mktemp("app-api"))
        if request.param == "postgres":
            settings.database_url = stack.enter_context(postgres_database())
        settings.serving.api_key_hashes = [hash_key(KEY)]
        url = stack.enter_context(live_server(create_app(settings)))
        headers = {"Authorization": f"Bearer {KEY}"}
        record = example_record(trained_model)
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for _ in range(SEEDED):
                assert client.post("/predict", json=record).status_code == 200
            info = client.get("/model").json()
        yield LiveApi(url, info)


@pytest.fixture
def app_env(live_api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> LiveApi:
    monkeypatch.setenv("CHURNOPS_APP__API_URL", live_api.url)
    monkeypatch.setenv("CHURNOPS_API_KEY", KEY)
    return live_api


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements: Any) -> list[str]:
    return [str(element.value) for element in elements]


def predict(at: AppTest) -> AppTest:
    submit = next(b for b in at.button if b.label == "Predict")
    return submit.click().run()


# --- Customer ---------------------------------------------------------------------------------


def test_customer_form_is_generated_from_the_model(app_env: LiveApi) -> None:
    at = page("customer").run()
    assert not at.exception
    schema = app_env.info["schema"]
    example = app_env.info["input_example"]
    labels = {w.label for w in [*at.selectbox, *at.toggle, *at.number_input, *at.text_input]}
    assert {column["name"] for column in schema["features"]} <= labels
    for column in schema["features"]:
        if column["kind"] == "categorical":
            box = at.selectbox(key=f"field:{column['name']}")
            assert box.value == example[column["name"]]
            allowed = [c for c in column["categories"] if c != "(missing)"]
            assert box.options == [str(c) for c in allowed]
        elif column["kind"] == "numeric":
            number = at.number_input(key=f"field:{column['name']}")
            integer = column["dtype"] == "int"
            low = math.floor(column["min"]) if integer else column["min"]
            high = math.ceil(column["max"]) if integer else column["max"]
            assert (number.min, number.max) == (pytest.approx(low), pytest.approx(high))
            assert low <= number.value <= high


def test_customer_predict_shows_the_answer_and_what_if_moves_it(app_env: LiveApi) -> None:
    at = predict(page("customer").run())
    assert not at.exception
    shown = metrics(at)
    probability = float(shown["Churn probability"].rstrip("%")) / 100
    assert 0.0 <= probability <= 1.0
    threshold = float(app_env.info["threshold"])
    assert shown["Decision"] == ("will churn" if probability >= threshold else "will stay")
    bands = app_env.info["risk_bands"]
    level = (
        "high"
        if probability >= bands["high"]
        else "medium"
        if probability >= bands["medium"]
        else "low"
    )
    assert shown["Risk level"] == level.upper()
    assert len(at.get("plotly_chart")) == 2  # gauge and reasons
    assert any("because: risk level" in text for text in texts(at.markdown))
    # What-if: move every numeric field to the other end of its range and score again.
    for column in app_env.info["schema"]["features"]:
        if column["kind"] == "numeric":
            widget = at.number_input(key=f"field:{column['name']}")
            target = widget.min if widget.value > (widget.min + widget.max) / 2 else widget.max
            widget.set_value(target)
    at = predict(at)
    first = next(m for m in at.metric if m.label == "Churn probability")
    assert first.delta is not None and "pts vs first answer" in first.delta
    moved = float(first.value.rstrip("%")) / 100
    delta_points = float(first.delta.split(" ")[0])
    assert delta_points == pytest.approx((moved - probability) * 100, abs=0.11)
    assert moved != pytest.approx(probability)


def test_customer_422_is_shown_next_to_the_field(app_env: LiveApi) -> None:
    id_column = app_env.info["schema"]["id_column"]
    at = page("customer").run()
    at.text_input(key=f"field:{id_column}").set_value("x" * 300)
    at = predict(at)
    assert not at.exception
    errors = texts(at.error)
    assert any(text.startswith(f"{id_column}:") for text in errors), errors
    assert any("Could not score this customer" in text for text in errors)
    assert "Churn probability" not in metrics(at)


def test_customer_page_without_the_key_says_so(
    app_env: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_API_KEY", "wrong-key")
    at = page("customer").run()
    assert not at.exception
    assert any("refused the key" in text for text in texts(at.error) + texts(at.warning))


def test_customer_page_with_the_api_down_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_APP__API_URL", f"http://127.0.0.1:{free_port()}")
    at = page("customer").run()
    assert not at.exception
    assert any("Cannot reach the API" in text for text in texts(at.error))


# --- Batch --------------------------------------------------------------------------------------


def demo_upload(rows: int) -> pd.DataFrame:
    return pd.read_csv(demo_path()).head(rows)


def test_batch_scores_an_upload_in_chunks_and_lists_rejected_rows(
    app_env: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_APP__BATCH_CHUNK_ROWS", "40")
    frame = demo_upload(150)
    numeric = next(c["name"] for c in app_env.info["schema"]["features"] if c["kind"] == "numeric")
    frame[numeric] = frame[numeric].astype(object)
    frame.loc[[6, 97], numeric] = "not a number"  # data rows 7 and 98
    at = page("batch").run()
    at.file_uploader[0].upload("customers.csv", frame.to_csv(index=False).encode(), "text/csv")
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Customers scored"] == "148"
    assert shown["Rows rejected"] == "2"
    rejected = next(df for df in at.dataframe if "reason" in df.value.columns).value
    assert rejected["row"].tolist() == [7, 98]
    assert all(reason.startswith(f"{numeric}:") for reason in rejected["reason"])
    riskiest = next(df for df in at.dataframe if "top_reasons" in df.value.columns).value
    assert riskiest["churn_probability"].is_monotonic_decreasing
    assert len(riskiest) == 10
    rate = float(shown["Predicted churn rate"].rstrip("%"))
    assert 0.0 <= rate <= 100.0
    assert len(at.get("plotly_chart")) == 2  # risk levels and histogram
    assert any("churn is not a model input" in text for text in texts(at.caption))


def test_batch_upload_with_missing_and_unknown_columns_lists_every_problem(
    app_env: LiveApi,
) -> None:
    features = [c["name"] for c in app_env.info["schema"]["features"]]
    frame = demo_upload(5).drop(columns=features[:2]).assign(colour="red", size=1)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    at = page("batch").run()
    at.file_uploader[0].upload("customers.parquet", buffer.getvalue())
    at.run()
    assert not at.exception
    message = " ".join(texts(at.error))
    for name in features[:2]:
        assert f"missing column: {name}" in message
    assert "unknown column: colour" in message and "unknown column: size" in message
    assert "Customers scored" not in metrics(at)


# --- Service ------------------------------------------------------------------------------------


def test_service_page_reads_health_store_and_metrics(app_env: LiveApi) -> None:
    at = page("service").run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Health"] == "alive"
    assert shown["Readiness"] == "ok"
    assert shown["Store"] == "ok"
    assert shown[f"Served model: {app_env.info['name']}"].startswith(f"v{app_env.info['version']}")
    assert float(shown["Requests served"].replace(",", "")) >= SEEDED
    assert shown["Request rate"] == "press Refresh"
    table = at.dataframe[0].value
    predict_row = table[table["route"] == "/predict"].iloc[0]
    assert predict_row["requests"] >= SEEDED
    assert predict_row["mean latency"].endswith(" ms")
    at = next(b for b in at.button if b.label == "Refresh").click().run()
    assert metrics(at)["Request rate"].endswith("/s")


def test_service_page_with_the_api_down_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_APP__API_URL", f"http://127.0.0.1:{free_port()}")
    at = page("service").run()
    assert not at.exception
    assert any("Cannot reach the API" in text for text in texts(at.error))


# --- The app as a whole -------------------------------------------------------------------------


def test_navigation_holds_the_seven_pages(app_env: LiveApi) -> None:
    at = AppTest.from_string(
        "from churnops.dashboard.app import main\nmain()\n", default_timeout=60
    ).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Customer"]  # the default page
    for name, title in (
        ("batch", "Batch"),
        ("service", "Service"),
        ("monitoring", "Monitoring"),
        ("models", "Models"),
        ("retraining", "Retraining"),
        ("deployment", "Deployment"),
    ):
        at.switch_page(str(PAGES / f"{name}.py")).run()
        assert not at.exception, name
        assert [t.value for t in at.title] == [title]


def test_batch_under_a_held_rate_limit_stops_in_words_and_keeps_what_was_scored(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    settings.serving.rate_limits = {"/predict/batch": 2}  # two chunks a minute
    waits: list[float] = []
    with live_server(create_app(settings)) as url:
        client = ApiClient(url)
        info = httpx.get(f"{url}/model", timeout=30).json()
        frame = demo_upload(100)
        send, _ = plan_columns(list(frame.columns), info["schema"])
        outcome = score_upload(
            client, frame, send=send, schema=info["schema"], chunk_rows=30, sleep=waits.append
        )
    assert len(outcome.scored) == 60  # the two chunks the limit let through
    assert outcome.scored["row"].tolist() == list(range(1, 61))
    assert outcome.problem is not None and outcome.problem.kind == "rate_limited"
    assert "Too many requests" in outcome.problem.message
    assert len(waits) == 3 and all(0 < wait <= 10 for wait in waits)  # retried, then gave up


# --- Configuration ------------------------------------------------------------------------------


def test_the_key_can_come_from_a_file(
    app_env: LiveApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "app_key"
    key_file.write_text(KEY + "\n")
    monkeypatch.delenv("CHURNOPS_API_KEY")
    monkeypatch.setenv("CHURNOPS_API_KEY_FILE", str(key_file))
    at = predict(page("customer").run())
    assert not at.exception
    assert "Risk level" in metrics(at)
    monkeypatch.setenv("CHURNOPS_API_KEY_FILE", str(tmp_path / "missing"))
    at = page("customer").run()
    assert not at.exception
    assert any(
        "CHURNOPS_API_KEY_FILE" in text and "cannot be read" in text for text in texts(at.error)
    )


def test_pages_say_when_the_api_has_no_model(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(uri: str) -> tuple[Any, Any]:
        raise ModelNotFoundError(f"no registered model at {uri}")

    settings = api_settings(trained_model, tmp_path)
    with live_server(create_app(settings, scorer_loader=no_model)) as url:
        monkeypatch.setenv("CHURNOPS_APP__API_URL", url)
        customer = page("customer").run()
        service = page("service").run()
    assert not customer.exception and not service.exception
    assert any("not ready" in text for text in texts(customer.error))
    shown = metrics(service)
    assert shown["Readiness"] == "not ready"
    assert shown["Served model"] == "none"
    assert any("model not loaded" in text for text in texts(service.warning))
