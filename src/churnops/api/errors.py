"""Every bad request becomes a 4xx JSON answer naming the field and the reason; never a traceback.

Body: `{"error": <code>, "message": <first problem>, "detail": [{"field", "reason", "message"}]}`.
"""

from __future__ import annotations

import logging
import math
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnops.errors import ChurnopsError, ModelNotFoundError, StoreError

logger = logging.getLogger(__name__)

# An error answer stays small whatever the request: a 10,000-row batch of bad rows, or a 15 MB
# field name, must not come back as a bigger answer (an amplifier for whoever sends it).
MAX_DETAILS = 20  # the rest are counted in the message
MAX_SHOWN = 80  # characters of any echoed name or value
MAX_REASON = 300  # characters of one reason (model-defined lists of allowed values included)


class ApiError(Exception):
    """An error answer: HTTP status, short code, human message and per-field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or []
        self.headers = dict(headers or {})


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """orjson-encoded JSON response (numpy scalars and arrays allowed)."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=dict(headers) if headers else None,
    )


def error_response(error: ApiError) -> Response:
    body = {"error": error.code, "message": error.message, "detail": error.detail}
    return json_response(body, error.status, error.headers)


# Union members appear in pydantic locations ("constrained-str"); they are not fields.
_TYPE_TAG = re.compile(
    r"^(constrained-\w+|function-[\w-]+\[.*\]|literal\[.*\]|int|str|float|bool|none)$"
)


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = MAX_SHOWN


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` cut to `limit` characters, marked with '...' when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_path(loc: Sequence[int | str]) -> str:
    """('customers', 3, 'contract') -> 'customers[3].contract'; the body itself is '(body)'.

    Names come from the request (an unknown field is named as sent), so each is clipped."""
    out = ""
    for position, part in enumerate(loc):
        if part == "body" and not out:
            continue
        if isinstance(part, str) and position > 0 and _TYPE_TAG.match(part):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = clip(str(part))
            out += f".{name}" if out else name
    return clip(out, 2 * MAX_SHOWN) if out else "(body)"


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()  # as written in the JSON
    if isinstance(value, str | bytes):
        return clip(repr(value[: MAX_SHOWN + 1]))
    return clip(_SHORT_REPR.repr(value))  # bounded work for a huge object or array


def _field_name(loc: Sequence[int | str]) -> str | None:
    """The innermost field name of a pydantic location (union member tags skipped)."""
    for position in range(len(loc) - 1, -1, -1):
        part = loc[position]
        if isinstance(part, str) and not (position > 0 and _TYPE_TAG.match(part)):
            return part
    return None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
}


def reason_for(error: Mapping[str, Any], allowed: Mapping[str, list[Any]] | None = None) -> str:
    """One pydantic error as a short, specific reason."""
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    loc = error.get("loc", ())
    name = _field_name(loc)
    values = (allowed or {}).get(name) if name is not None else None
    if kind == "literal_error" or (
        values is not None and kind not in ("missing", "extra_forbidden")
    ):
        # A closed set of values (categories, 0/1 fields): say which, whatever the check was.
        listed = repr(values) if values is not None else f"[{ctx.get('expected', '')}]"
        return clip(f"{_shown(value)} is not one of {listed}", MAX_REASON)
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "finite_number":
        return f"must be a finite number, got {_shown(value)}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_type_name(value)}"
    if kind in ("less_than_equal", "greater_than_equal"):
        bound = ctx.get("le", ctx.get("ge"))
        side = "at most" if kind == "less_than_equal" else "at least"
        return f"must be {side} {bound:g}, got {_shown(value)}"
    if kind == "string_pattern_mismatch":
        return "must not contain NUL characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items, at most {ctx.get('max_length')} allowed"
    if kind == "json_invalid":
        return clip(f"malformed JSON: {ctx.get('error', '')}", MAX_REASON)
    message = str(error.get("msg", "invalid value"))
    return clip(message.removeprefix("Value error, "), MAX_REASON)


def validation_error(
    exc: ValidationError | RequestValidationError,
    *,
    allowed: Mapping[str, list[Any]] | None = None,
    batch_field: str = "customers",
) -> ApiError:
    """Pydantic errors -> ApiError: 400 malformed JSON, 413 oversized batch, else 422.

    At most MAX_DETAILS details (the rest are counted in the message), every echoed name and
    value clipped: the answer stays a few kilobytes whatever was sent.
    """
    errors = exc.errors()
    details: list[dict[str, Any]] = []
    status = 422
    code = "invalid_input"
    fields_seen: set[str] = set()
    for error in errors:
        field = field_path(error.get("loc", ()))
        if field in fields_seen:  # one reason per field (a union reports each member)
            continue
        fields_seen.add(field)
        if error["type"] == "json_invalid":
            status, code, field = 400, "malformed_json", "(body)"
        elif error["type"] == "too_long" and field == batch_field and status != 400:
            status, code = 413, "batch_too_large"
        elif error["type"] == "too_short" and field == batch_field:
            code = "empty_batch"
        if len(details) >= MAX_DETAILS:
            continue  # counted in the message, not shown
        reason = reason_for(error, allowed)
        details.append({"field": field, "reason": reason, "message": f"{field}: {reason}"})
    if not details:
        details = [{"field": "(body)", "reason": "invalid", "message": "(body): invalid"}]
    message = details[0]["message"]
    more = len(fields_seen) - 1
    if more > 0:
        message += f" (and {more} more problem(s))"
    return ApiError(status, code, message, detail=details)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _request_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(exc))


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    code = codes.get(exc.status_code, "http_error")
    message = str(exc.detail)
    return error_response(ApiError(exc.status_code, code, message, headers=exc.headers))


async def _churnops_error(_: Request, exc: Exception) -> Response:
    return churnops_error_response(exc)


def churnops_error_response(exc: Exception) -> Response:
    """A deliberate churnops error as a 4xx/503 in the common JSON shape."""
    if isinstance(exc, ModelNotFoundError):
        return error_response(ApiError(503, "model_not_loaded", str(exc)))
    if isinstance(exc, StoreError):
        headers = {"Retry-After": "5"}
        return error_response(ApiError(503, "store_unavailable", str(exc), headers=headers))
    return error_response(ApiError(400, "bad_request", str(exc)))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(request.method, request.url.path)


def unexpected_error_response(method: str, path: str) -> Response:
    """Log the traceback for operators; the client gets no internals."""
    logger.exception("unexpected error on %s %s", method, path)
    return error_response(ApiError(500, "internal_error", "internal error; see the server log"))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error shape above."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ChurnopsError, _churnops_error)
    app.add_exception_handler(Exception, _unexpected)
