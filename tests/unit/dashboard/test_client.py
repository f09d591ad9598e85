"""Every way the API can fail becomes a Problem in words; success is an Ok value."""

from __future__ import annotations

import httpx
import pytest

from churnops.dashboard.client import ApiClient, Ok, Problem
from tests.support.stores import free_port


def answering(status: int, body: object = None, headers: dict[str, str] | None = None) -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return ApiClient("http://api.test", transport=httpx.MockTransport(handler))


def test_success_is_a_value_and_the_key_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"churn_probability": 0.3})

    client = ApiClient("http://api.test/", api_key="k-123", transport=httpx.MockTransport(handler))
    result = client.predict({"a": 1})
    assert result == Ok({"churn_probability": 0.3})
    assert seen[0].headers["authorization"] == "Bearer k-123"
    assert seen[0].url == "http://api.test/predict"


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "words"),
    [
        (
            401,
            {"error": "unauthorized", "message": "no key"},
            None,
            "unauthorized",
            "CHURNOPS_API_KEY",
        ),
        (
            429,
            {"error": "rate_limited", "message": "slow"},
            {"Retry-After": "7"},
            "rate_limited",
            "7 s",
        ),
        (
            503,
            {"error": "no_model", "message": "no model is loaded"},
            None,
            "not_ready",
            "not ready",
        ),
        (500, {"error": "internal", "message": "boom"}, None, "server", "HTTP 500"),
        (502, None, None, "server", "HTTP 502"),
        (418, None, None, "unexpected", "HTTP 418"),
    ],
)
def test_failures_become_problems(
    status: int, body: object, headers: dict[str, str] | None, kind: str, words: str
) -> None:
    result = answering(status, body, headers).model()
    assert isinstance(result, Problem)
    assert result.kind == kind
    assert result.status == status
    assert words in result.message


def test_422_keeps_every_field_and_reason() -> None:
    body = {
        "error": "invalid_input",
        "message": "tenure: must be a number",
        "detail": [
            {"field": "tenure", "reason": "must be a number", "message": "..."},
            {"field": "plan", "reason": "not one of 'a', 'b'", "message": "..."},
            {"field": "tenure", "reason": "second reason ignored", "message": "..."},
        ],
    }
    result = answering(422, body).predict({})
    assert isinstance(result, Problem)
    assert result.kind == "invalid"
    assert result.fields == {"tenure": "must be a number", "plan": "not one of 'a', 'b'"}
    assert result.retry_after is None


def test_429_keeps_the_wait() -> None:
    result = answering(429, {}, {"Retry-After": "12"}).predict_batch([{}])
    assert isinstance(result, Problem) and result.retry_after == 12.0


def test_ready_keeps_the_503_body() -> None:
    result = answering(503, {"status": "not_ready", "degraded": ["model_not_loaded"]}).ready()
    assert result == Ok({"status": "not_ready", "degraded": ["model_not_loaded"]})


def test_nothing_listening_is_unreachable_in_words() -> None:
    client = ApiClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=2)
    result = client.health()
    assert isinstance(result, Problem)
    assert result.kind == "unreachable"
    assert "Cannot reach the API" in result.message and "churnops serve" in result.message
