"""One pure ASGI middleware for what every request needs: metrics, API keys, rate limits, body size.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request cost to a few microseconds, which matters
when the whole prediction takes under a millisecond.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnops.api.body import check_json_media, request_id_of
from churnops.api.deps import ServiceState
from churnops.api.errors import (
    ApiError,
    churnops_error_response,
    error_response,
    unexpected_error_response,
)
from churnops.api.routes.predict import predict_one
from churnops.apikeys import bearer_token
from churnops.errors import ChurnopsError

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

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
            await send(message)

        try:
            await self._handle(scope, receive, send_wrapper, path)
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

    async def _handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        service = self.service
        headers = dict(scope["headers"])
        identity: str | None = None
        if service.keys.enabled and path not in self.open_paths:
            token = bearer_token(headers.get(b"authorization"))
            identity = service.keys.verify(token) if token else None
            if identity is None:
                message = "missing API key" if token is None else "invalid API key"
                await _send_error(
                    send, 401, "unauthorized", message, {"WWW-Authenticate": "Bearer"}
                )
                return
            identity = f"key:{identity}"
        limit = service.limits.get(path)
        if limit:
            if identity is None:
                client = scope.get("client")
                identity = f"ip:{client[0] if client else 'unknown'}"
            decision = await service.limiter.hit(f"{path}:{identity}", limit)
            if not decision.allowed:
                service.metrics.count_rate_limited(path)
                await _send_error(
                    send,
                    429,
                    "rate_limited",
                    f"rate limit of {limit} requests per minute exceeded",
                    {
                        "Retry-After": str(decision.retry_after),
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                    },
                )
                return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    await _send_error(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > self.max_body:
                    await _send_error(
                        send,
                        413,
                        "body_too_large",
                        f"request body of {declared} bytes is larger than {self.max_body}",
                    )
                    return
            receive = self._limited(receive)
        if path == "/predict" and scope["method"] == "POST":
            await self._predict(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

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
            payload = predict_one(self.service, body, request_id=request_id)
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
