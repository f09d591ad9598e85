"""One pure ASGI middleware for what every request needs: metrics, API keys, rate limits, body size.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request cost to a few microseconds, which matters
when the whole prediction takes under a millisecond.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnops.api.body import check_json_media, log_request_id, request_id_of
from churnops.api.deps import ServiceState
from churnops.api.errors import (
    ApiError,
    churnops_error_response,
    error_response,
    unexpected_error_response,
)
from churnops.api.service import predict_one
from churnops.apikeys import bearer_token
from churnops.errors import ChurnopsError
from churnops.logformat import bind_request, unbind

OPEN_PATHS = frozenset(
    {"/", "/health", "/ready", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class BodyTooLargeError(Exception):
    """Raised from `receive` when a streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


async def _send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps({"error": code, "message": message, "detail": []})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


_JSON_HEADERS = (b"content-type", b"application/json")
# An answer given before the route runs: status, error code, message, extra headers.
Refusal = tuple[int, str, str, dict[str, str] | None]


class ServingMiddleware:
    """Metrics for every request; auth, rate limits and the body limit before the route runs.

    It sits in front of FastAPI (see `ChurnopsAPI`), so it also answers POST /predict itself and
    turns anything unexpected into the JSON 500 shape instead of a bare traceback.
    """

    def __init__(
        self,
        app: ASGIApp,
        service: ServiceState,
        routes: frozenset[str],
        open_paths: frozenset[str] = OPEN_PATHS,
    ) -> None:
        self.app = app
        self.service = service
        self.routes = routes
        self.open_paths = open_paths  # answered without an API key
        self.max_body = service.serving.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        route = path if path in self.routes else "other"
        status = 500
        sent_start = False
        headers = dict(scope["headers"])
        # Every line logged while this request runs (uvicorn's access line included) names it and
        # the model version serving it; the id goes back in the X-Request-ID response header.
        request_id = log_request_id(headers.get(b"x-request-id"))
        echoed = (b"x-request-id", request_id.encode())
        model = self.service.models.current
        version = model.version if model is not None else None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = bind_request(request_id, version)
        try:
            await self._handle(scope, receive, send_wrapper, path, headers)
        except BodyTooLargeError as exc:  # raised while streaming, before the route could answer
            if not sent_start:
                await _send_error(send_wrapper, 413, "body_too_large", str(exc))
        except Exception:
            if sent_start:
                raise  # FastAPI's error middleware already answered; let the server log it
            response = unexpected_error_response(scope["method"], path)
            await response(scope, receive, send_wrapper)
        finally:
            self.service.metrics.observe_request(
                route, scope["method"], status, time.perf_counter() - started
            )
            unbind(token)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, path: str, headers: dict[bytes, bytes]
    ) -> None:
        identity, refusal = self._authenticate(path, headers)
        limit = self.service.limits.get(path)
        if refusal is None and limit:
            refusal = await self._rate_limit(scope, path, identity, limit)
        if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
            refusal = self._declared_length(headers.get(b"content-length"))
            receive = self._limited(receive)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        if path == "/predict" and scope["method"] == "POST":
            await self._predict(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

    def _authenticate(
        self, path: str, headers: dict[bytes, bytes]
    ) -> tuple[str | None, Refusal | None]:
        """The caller's key identity (None when no key is needed), or why it is refused (401)."""
        keys = self.service.keys
        if not keys.enabled or path in self.open_paths:
            return None, None
        token = bearer_token(headers.get(b"authorization"))
        identity = keys.verify(token) if token else None
        if identity is None:
            message = "missing API key" if token is None else "invalid API key"
            return None, (401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})
        return f"key:{identity}", None

    async def _rate_limit(
        self, scope: Scope, path: str, identity: str | None, limit: int
    ) -> Refusal | None:
        """A 429 once this key (else this client address) has used its requests per minute."""
        if identity is None:
            client = scope.get("client")
            identity = f"ip:{client[0] if client else 'unknown'}"
        decision = await self.service.limiter.hit(f"{path}:{identity}", limit)
        if decision.allowed:
            return None
        self.service.metrics.count_rate_limited(path)
        headers = {
            "Retry-After": str(decision.retry_after),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
        }
        return 429, "rate_limited", f"rate limit of {limit} requests per minute exceeded", headers

    def _declared_length(self, length: bytes | None) -> Refusal | None:
        """A 400 for an unreadable Content-Length, a 413 for one above the body limit."""
        if length is None:
            return None
        try:
            declared = int(length)
        except ValueError:
            return 400, "bad_request", "invalid Content-Length", None
        if declared > self.max_body:
            message = f"request body of {declared} bytes is larger than {self.max_body}"
            return 413, "body_too_large", message, None
        return None

    async def _predict(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        """POST /predict without FastAPI's layers or the router (they cost more than scoring).

        Same checks, answers and errors as the documented route, which calls the same function.
        """
        try:
            check_json_media(headers.get(b"content-type", b"").decode("latin-1"))
            body = await _read_body(receive)
            request_id = request_id_of(headers.get(b"x-request-id"))
            caller = headers.get(b"authorization", b"").decode("latin-1") or None
            payload = predict_one(self.service, body, request_id=request_id, caller=caller)
        except BodyTooLargeError:
            raise  # answered 413 by __call__
        except ApiError as exc:
            response = error_response(exc)
        except ChurnopsError as exc:
            response = churnops_error_response(exc)
        except Exception:
            response = unexpected_error_response(scope["method"], scope["path"])
        else:
            length = (b"content-length", str(len(payload)).encode())
            await send({"type": "http.response.start", "status": 200, "headers": [_JSON_HEADERS, length]})  # fmt: skip
            await send({"type": "http.response.body", "body": payload})
            return
        await response(scope, receive, send)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def wrapped() -> Message:
            nonlocal seen
            message: Any = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        return wrapped
