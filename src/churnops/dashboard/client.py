"""The app's only way to the prediction API: every answer is a value, every failure a `Problem`.

Pages never see an exception from here. The API being down, not ready, refusing the key (401),
rate limiting (429), rejecting the input (422, with the fields it names) or failing (5xx) all come
back as a `Problem` whose `message` is a sentence a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx

T = TypeVar("T")

ProblemKind = Literal[
    "unreachable", "not_ready", "unauthorized", "rate_limited", "invalid", "server", "unexpected"
]


@dataclass(frozen=True)
class Problem:
    """Why the API did not give an answer, in words; `fields` maps a field name to its reason."""

    kind: ProblemKind
    message: str
    status: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None


@dataclass(frozen=True)
class Ok(Generic[T]):
    value: T


Result = Ok[T] | Problem


@dataclass(frozen=True)
class Answer:
    """A raw successful response: its status, JSON body (or text) and headers."""

    status: int
    body: Any
    text: str


def _error_fields(body: Any) -> dict[str, str]:
    """`{"detail": [{"field", "reason"}]}` -> {field: reason}; first reason per field wins."""
    fields: dict[str, str] = {}
    if isinstance(body, dict):
        for item in body.get("detail") or []:
            if isinstance(item, dict) and item.get("field"):
                fields.setdefault(str(item["field"]), str(item.get("reason") or item))
    return fields


def problem_from_response(response: httpx.Response) -> Problem:
    """Turn a non-2xx answer into a Problem with a readable message."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    said = body.get("message") if isinstance(body, dict) else None
    if status == 401:
        return Problem(
            "unauthorized",
            "The API refused the key. Set CHURNOPS_API_KEY (or app.api_key) to a valid key "
            "(`churnops keys create` makes one).",
            status,
        )
    if status == 429:
        retry = response.headers.get("retry-after")
        try:
            seconds = float(retry) if retry is not None else None
        except ValueError:
            seconds = None
        wait = f" Try again in {seconds:g} s." if seconds is not None else " Try again shortly."
        return Problem(
            "rate_limited",
            "Too many requests for the API's rate limit." + wait,
            status,
            retry_after=seconds,
        )
    if status == 503:
        return Problem(
            "not_ready",
            "The API is up but not ready: " + (said or "no model is loaded yet") + ".",
            status,
        )
    if status in (400, 413, 415, 422):
        fields = _error_fields(body)
        return Problem(
            "invalid",
            said or f"The API rejected the request (HTTP {status}).",
            status,
            fields=fields,
        )
    if status >= 500:
        return Problem(
            "server",
            f"The API failed (HTTP {status}): "
            + (said or "server error")
            + ". Its log has the details.",
            status,
        )
    return Problem("unexpected", f"Unexpected answer from the API (HTTP {status}).", status)


class ApiClient:
    """A small synchronous client: base URL, key header, timeouts; answers as Result values."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, json_body: Any = None) -> httpx.Response | Problem:
        try:
            return self._http.request(method, path, json=json_body)
        except httpx.TimeoutException:
            return Problem("unreachable", f"The API at {self.base_url} did not answer in time.")
        except httpx.HTTPError as exc:
            return Problem(
                "unreachable",
                f"Cannot reach the API at {self.base_url} ({type(exc).__name__}). Is it running? "
                "Start it with `churnops serve` or `make run`.",
            )

    def request(self, method: str, path: str, *, json_body: Any = None) -> Result[Answer]:
        response = self._send(method, path, json_body)
        if isinstance(response, Problem):
            return response
        if response.status_code >= 400:
            return problem_from_response(response)
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return Ok(Answer(response.status_code, body, response.text))

    def _json(self, method: str, path: str, json_body: Any = None) -> Result[Any]:
        result = self.request(method, path, json_body=json_body)
        if isinstance(result, Problem):
            return result
        return Ok(result.value.body)

    def health(self) -> Result[Any]:
        return self._json("GET", "/health")

    def ready(self) -> Result[Any]:
        """/ready answers 503 with a body when no model is loaded: that body is the value."""
        response = self._send("GET", "/ready")
        if isinstance(response, Problem):
            return response
        if response.status_code in (200, 503):
            try:
                return Ok(response.json())
            except ValueError:
                pass
        return problem_from_response(response)

    def model(self) -> Result[Any]:
        return self._json("GET", "/model")

    def metrics_text(self) -> Result[str]:
        result = self.request("GET", "/metrics")
        if isinstance(result, Problem):
            return result
        return Ok(result.value.text)

    def predict(self, customer: dict[str, Any]) -> Result[Any]:
        return self._json("POST", "/predict", customer)

    def predict_batch(self, customers: list[dict[str, Any]]) -> Result[Any]:
        return self._json("POST", "/predict/batch", {"customers": customers})
