"""The prediction API end to end in process: endpoints, the generated contract, every bad input."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.data.profile import typical_record
from churnops.store import PredictionStore
from tests.support.api import api_settings, example_record, wait_for
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-contract")


@pytest.fixture(scope="module")
def client(trained_model: TrainedModel, home: Path) -> Iterator[TestClient]:
    settings = api_settings(trained_model, home, max_batch_size=50, max_body_bytes=200_000)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def record(trained_model: TrainedModel) -> dict[str, Any]:
    return example_record(trained_model)


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "detail"}
    assert "Traceback" not in response.text
    return body


def test_predict_one_customer(client: TestClient, record: dict[str, Any]) -> None:
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == record["customer_id"]
    assert 0.0 <= body["churn_probability"] <= 1.0
    assert body["risk_level"] in ("low", "medium", "high")
    assert 0.5 <= body["confidence"] <= 1.0
    assert body["model_name"] == "churn-model" and body["model_version"] == "1"
    assert len(body["prediction_id"]) == 36
    for reason in body["reasons"]:
        assert reason["contribution"] > 0 and reason["feature"] in record


def test_id_is_optional_and_does_not_change_the_score(
    client: TestClient, record: dict[str, Any]
) -> None:
    with_id = client.post("/predict", json=record).json()
    without = {k: v for k, v in record.items() if k != "customer_id"}
    other = client.post("/predict", json=without).json()
    assert other["customer_id"] is None
    assert other["churn_probability"] == pytest.approx(with_id["churn_probability"])


def test_same_score_as_the_scorer(
    client: TestClient, trained_model: TrainedModel, record: dict[str, Any]
) -> None:
    expected = trained_model.scorer().score_records([record]).probability[0]
    assert client.post("/predict", json=record).json()["churn_probability"] == pytest.approx(
        expected
    )


def test_batch_in_order_with_summary(client: TestClient, trained_model: TrainedModel) -> None:
    frame = trained_model.frame.drop(columns=["churn"]).head(20)
    customers = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    response = client.post("/predict/batch", json={"customers": customers})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["customer_id"] for p in body["predictions"]] == list(frame["customer_id"])
    summary = body["summary"]
    assert summary["count"] == 20
    assert sum(summary["by_risk_level"].values()) == 20
    probabilities = [p["churn_probability"] for p in body["predictions"]]
    assert summary["mean_probability"] == pytest.approx(sum(probabilities) / 20)
    churners = sum(p["will_churn"] for p in body["predictions"])
    assert summary["predicted_churn_rate"] == pytest.approx(churners / 20)


def test_unknown_category_names_field_and_allowed_values(
    client: TestClient, record: dict[str, Any]
) -> None:
    body = _error(client.post("/predict", json=record | {"contract": "Three year"}), 422)
    assert body["message"] == (
        "contract: 'Three year' is not one of ['Month-to-month', 'One year', 'Two year']"
    )
    assert body["detail"][0]["field"] == "contract"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"tenure": "twelve"}, "tenure", "expected a number, got a string"),
        ({"monthly_charges": True}, "monthly_charges", "expected a number, got a boolean"),
        ({"contract": 3}, "contract", "3 is not one of"),
        ({"partner": 2}, "partner", "2 is not one of [0, 1]"),
        ({"shoe_size": 44}, "shoe_size", "unknown field"),
        ({"tenure": None}, "tenure", "expected a number, got null"),
    ],
)
def test_wrong_types_unknown_fields(
    client: TestClient, record: dict[str, Any], change: dict[str, Any], field: str, reason: str
) -> None:
    body = _error(client.post("/predict", json=record | change), 422)
    assert body["detail"][0]["field"] == field
    assert reason in body["detail"][0]["reason"]


def test_missing_required_field(client: TestClient, record: dict[str, Any]) -> None:
    body = _error(
        client.post("/predict", json={k: v for k, v in record.items() if k != "tenure"}), 422
    )
    assert body["detail"][0] == {
        "field": "tenure",
        "reason": "required field is missing",
        "message": "tenure: required field is missing",
    }


def test_nullable_feature_may_be_null(client: TestClient, record: dict[str, Any]) -> None:
    assert client.post("/predict", json=record | {"total_charges": None}).status_code == 200


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_refused(client: TestClient, record: dict[str, Any], token: str) -> None:
    import json

    raw = json.dumps(record | {"monthly_charges": 0.5}).replace("0.5", token)
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    body = _error(response, 422)
    assert body["detail"][0]["field"] == "monthly_charges"
    assert "finite number" in body["detail"][0]["reason"]


def test_malformed_json(client: TestClient) -> None:
    for raw in (b"{bad", b"", b'{"tenure": 1,}'):
        response = client.post(
            "/predict", content=raw, headers={"content-type": "application/json"}
        )
        body = _error(response, 400)
        assert body["error"] == "malformed_json"


def test_not_an_object(client: TestClient) -> None:
    body = _error(client.post("/predict", json=[1, 2]), 422)
    assert "expected a JSON object" in body["message"]


def test_wrong_content_type(client: TestClient, record: dict[str, Any]) -> None:
    import json

    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = client.post("/predict", content=json.dumps(record), headers=headers)
        assert _error(response, 415)["detail"][0]["field"] == "Content-Type"


def test_empty_and_oversized_batch(client: TestClient, record: dict[str, Any]) -> None:
    assert (
        _error(client.post("/predict/batch", json={"customers": []}), 422)["error"] == "empty_batch"
    )
    body = _error(client.post("/predict/batch", json={"customers": [record] * 51}), 413)
    assert body["error"] == "batch_too_large"
    assert "at most 50" in body["message"]


def test_bad_row_in_batch_is_located(client: TestClient, record: dict[str, Any]) -> None:
    customers = [record, record | {"contract": "Three year"}]
    body = _error(client.post("/predict/batch", json={"customers": customers}), 422)
    assert body["detail"][0]["field"] == "customers[1].contract"


def test_oversized_body(client: TestClient, record: dict[str, Any]) -> None:
    padding = "x" * 250_000
    response = client.post("/predict", json=record | {"customer_id": padding})
    assert _error(response, 413)["error"] == "body_too_large"


def test_oversized_body_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"customer_id": "'
        for _ in range(30):
            yield b"y" * 10_000
        yield b'"}'

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert _error(response, 413)["error"] == "body_too_large"


def test_health_ready_model(client: TestClient, trained_model: TrainedModel) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    info = client.get("/model").json()
    bundle = trained_model.scorer().bundle
    assert info["version"] == "1" and info["alias"] == "champion"
    assert info["threshold"] == pytest.approx(bundle.threshold)
    assert info["metrics"]["test"]["roc_auc"] == pytest.approx(bundle.metrics["test"]["roc_auc"])
    assert [f["name"] for f in info["schema"]["features"]] == bundle.schema.feature_names
    assert set(info["risk_bands"]) == {"medium", "high"}


def test_docs_example_works(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    ref = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    customer = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
    assert customer["additionalProperties"] is False
    contract = customer["properties"]["contract"]
    assert contract["enum"] == ["Month-to-month", "One year", "Two year"]
    example = customer["examples"][0]
    assert client.post("/predict", json=example).status_code == 200
    batch_ref = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    batch_example = spec["components"]["schemas"][batch_ref.rsplit("/", 1)[1]]["examples"][0]
    assert client.post("/predict/batch", json=batch_example).status_code == 200


def test_metrics(client: TestClient, record: dict[str, Any]) -> None:
    client.post("/predict", json=record | {"tenure": 500, "monthly_charges": 1.0})
    client.post("/predict", json=record | {"contract": "nope"})
    text = client.get("/metrics").text
    assert 'churnops_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'churnops_http_requests_total{method="POST",route="/predict",status="422"}' in text
    assert "churnops_http_request_duration_seconds_bucket{" in text
    assert 'churnops_predictions_total{risk_level="low"}' in text
    assert "churnops_prediction_score_bucket" in text
    assert "churnops_model_info{candidate=" in text and 'version="1"' in text
    assert "churnops_store_queue_depth" in text and "churnops_store_write_errors_total" in text
    assert 'churnops_out_of_range_values_total{feature="tenure",side="above"} 1.0' in text
    assert 'churnops_out_of_range_values_total{feature="monthly_charges",side="below"} 1.0' in text


def test_feedback_idempotent(client: TestClient, record: dict[str, Any], home: Path) -> None:
    prediction = client.post("/predict", json=record).json()
    body = {"prediction_id": prediction["prediction_id"], "label": 1}
    first = client.post("/feedback", json=body)
    second = client.post("/feedback", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    by_customer = client.post("/feedback", json={"customer_id": "CUST-NEVER-SEEN", "label": 0})
    assert by_customer.status_code == 200
    store = PredictionStore(f"sqlite:///{home / 'predictions.db'}")
    try:
        frame = store.read_predictions()
        labelled = frame[frame["prediction_id"] == prediction["prediction_id"]]
        assert labelled["label"].tolist() == [1.0]
        assert store.count_feedback(attached_only=True) == 1
    finally:
        store.close()


def test_feedback_for_an_unknown_prediction_is_queued_as_during_an_outage(
    client: TestClient,
) -> None:
    answer = client.post("/feedback", json={"prediction_id": "never-served", "label": 1})
    assert (answer.status_code, answer.json()["status"]) == (202, "queued")


@pytest.mark.parametrize(
    "body",
    [
        {"label": 1},
        {"prediction_id": "x", "label": 2},
        {"prediction_id": "x", "label": True},
        {"prediction_id": "x", "label": 1.0},
        {"prediction_id": "x", "label": 1, "z": 0},
    ],
)
def test_feedback_bad_input(client: TestClient, body: dict[str, Any]) -> None:
    _error(client.post("/feedback", json=body), 422)


def test_every_prediction_is_stored(client: TestClient, record: dict[str, Any], home: Path) -> None:
    store = PredictionStore(f"sqlite:///{home / 'predictions.db'}")
    try:
        before = store.count_predictions()
        served = [client.post("/predict", json=record).json()["prediction_id"] for _ in range(5)]
        assert wait_for(lambda: store.count_predictions() == before + 5)
        stored = store.read_predictions()
        row = stored[stored["prediction_id"] == served[0]].iloc[0]
        assert row["customer_id"] == record["customer_id"]
        assert row["model_version"] == "1" and row["source"] == "api"
        assert row["contract"] == record["contract"]
    finally:
        store.close()


def test_unknown_route_and_method(client: TestClient) -> None:
    assert _error(client.get("/nope"), 404)["error"] == "not_found"
    assert _error(client.get("/predict"), 405)["error"] == "method_not_allowed"


def _feature_rows(trained_model: TrainedModel) -> set[tuple[Any, ...]]:
    names = trained_model.outcome.schema.feature_names
    frame = trained_model.frame[names].astype(object)
    return {tuple(row) for row in frame.itertuples(index=False)}


def test_examples_are_made_up_never_training_rows(
    client: TestClient, trained_model: TrainedModel
) -> None:
    """OpenAPI and GET /model show typical values (median, most frequent category), no ids."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    customer = schemas["Customer"]["examples"][0]
    batch = schemas["CustomerBatch"]["examples"][0]["customers"]
    model_example = client.get("/model").json()["input_example"]
    frame = trained_model.frame
    names = trained_model.outcome.schema.feature_names
    rows = _feature_rows(trained_model)
    profile = trained_model.scorer().bundle.profile
    for example in (customer, *batch, model_example):
        assert sorted(example) == sorted(names)  # features only: no customer id
        assert tuple(example[name] for name in names) not in rows
        # Typical values of the training split (what the model's profile holds).
        assert example["tenure"] == round(np.median(profile.numeric["tenure"].quantiles))
        charges = np.median(profile.numeric["monthly_charges"].quantiles)
        assert example["monthly_charges"] == round(charges, 2)
        assert abs(charges - frame["monthly_charges"].median()) < 5
        for name in ("contract", "female"):
            frequencies = profile.categorical[name].frequencies
            assert str(example[name]) == max(frequencies, key=frequencies.__getitem__)
    assert client.post("/predict", json=customer).status_code == 200


def test_mlflow_input_example_is_made_up(trained_model: TrainedModel, tmp_path: Path) -> None:
    """What the MLflow registry shows every reader: the same made-up customer."""
    import json

    import mlflow

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{trained_model.champion_uri}", dst_path=str(tmp_path)
    )
    saved = json.loads((Path(local) / "input_example.json").read_text())
    columns, data = saved["columns"], saved["data"]
    assert len(data) == 1 and "customer_id" not in columns
    example = dict(zip(columns, data[0], strict=True))
    bundle = trained_model.scorer().bundle
    assert example == typical_record(bundle.schema, bundle.profile)
    names = trained_model.outcome.schema.feature_names
    assert tuple(example[name] for name in names) not in _feature_rows(trained_model)


@pytest.fixture(scope="module")
def roomy_client(trained_model: TrainedModel, home: Path) -> Iterator[TestClient]:
    """The default body limit (16 MB), for requests that are big on purpose."""
    settings = api_settings(trained_model, home / "roomy")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/predict", "/feedback", "/predict/batch"])
def test_a_huge_unknown_field_gets_a_small_answer(
    roomy_client: TestClient, record: dict[str, Any], path: str
) -> None:
    """A 15 MB field name used to come back two or three times (45 MB out for 15 MB in)."""
    name = "n" * 15_000_000
    bodies = {
        "/predict": record | {name: 1},
        "/feedback": {"prediction_id": "p-1", "label": 1, name: 1},
        "/predict/batch": {"customers": [record | {name: 1}]},
    }
    response = roomy_client.post(path, content=orjson.dumps(bodies[path]), headers=JSON)
    body = _error(response, 422)
    assert len(response.content) < 2_000
    prefix = "customers[0]." if path == "/predict/batch" else ""
    assert body["message"].startswith(prefix + "n" * 20)
    assert body["message"].endswith("...: unknown field")
    assert body["detail"][0]["reason"] == "unknown field"


def test_many_problems_are_counted_not_listed(
    roomy_client: TestClient, record: dict[str, Any]
) -> None:
    bad = {"customers": [record | {"tenure": "x"} for _ in range(500)]}
    body = _error(roomy_client.post("/predict/batch", json=bad), 422)
    assert len(body["detail"]) == 20
    assert body["message"].endswith("(and 499 more problem(s))")


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path", ["/predict", "/predict/batch", "/feedback"])
def test_duplicate_keys_are_refused_as_ambiguous(
    client: TestClient, record: dict[str, Any], path: str
) -> None:
    one = orjson.dumps(record).decode()
    bodies = {
        "/predict": one[:-1] + ', "tenure": 70}',
        "/predict/batch": '{"customers": [' + one[:-1] + ', "tenure": 70}]}',
        "/feedback": '{"prediction_id": "p-1", "label": 0, "label": 1}',
    }
    response = client.post(path, content=bodies[path].encode(), headers=JSON)
    body = _error(response, 400)
    assert body["error"] == "ambiguous_json"
    key = "label" if path == "/feedback" else "tenure"
    assert body["detail"][0]["field"] == key
    assert body["message"].startswith(f"{key}: appears more than once")


@pytest.mark.parametrize("value", [True, 1.0, 0.0])
def test_binary_field_is_strict(client: TestClient, record: dict[str, Any], value: Any) -> None:
    shown = orjson.dumps(value).decode()
    for path, body, field in (
        ("/predict", record | {"female": value}, "female"),
        ("/predict/batch", {"customers": [record, record | {"female": value}]}, "customers[1].female"),
    ):  # fmt: skip
        error = _error(client.post(path, json=body), 422)
        assert error["message"] == f"{field}: {shown} is not one of [0, 1]", error
        assert error["detail"][0]["field"] == field


def test_request_id_is_stored_exactly_as_sent(
    client: TestClient, record: dict[str, Any], home: Path
) -> None:
    request_id = "commande-été-✓-42"
    for path, body in (("/predict", record), ("/predict/batch", {"customers": [record]})):
        response = client.post(
            path, content=orjson.dumps(body), headers=JSON | {"X-Request-ID": request_id.encode()}
        )
        assert response.status_code == 200, response.text
        assert "x-request-id" not in response.headers  # not ASCII: stored and logged, not echoed
    # (Bytes that are not UTF-8 are refused too: see the unit tests; the test client re-encodes.)
    for bad in (b"r" * 129, b"id-with-\x7f-delete"):
        for path in ("/predict", "/predict/batch"):
            body = record if path == "/predict" else {"customers": [record]}
            response = client.post(
                path, content=orjson.dumps(body), headers=JSON | {"X-Request-ID": bad}
            )
            error = _error(response, 400)
            assert error["detail"][0]["field"] == "X-Request-ID"
    store = PredictionStore(f"sqlite:///{home / 'predictions.db'}")
    try:
        ok = wait_for(lambda: (store.read_predictions()["request_id"] == request_id).sum() == 2)
        stored = store.read_predictions()["request_id"]
        assert ok, stored.dropna().unique()
        assert not stored.fillna("").str.contains("r" * 129).any()
    finally:
        store.close()
