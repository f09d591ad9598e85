"""Raw request bodies: content type checked (415), then validated straight from bytes.

Also the one header the API stores: `X-Request-ID`.
"""

from __future__ import annotations

import functools
import json
import os
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from churnops.api.errors import ApiError, clip, validation_error

MAX_REQUEST_ID = 128  # characters; what the store's column holds

M = TypeVar("M", bound=BaseModel)


def check_json_content_type(request: Request) -> None:
    """Only `application/json` (or `application/*+json`) bodies are accepted."""
    check_json_media(request.headers.get("content-type", ""))


def check_json_media(content_type: str) -> None:
    """415 unless the Content-Type header value is JSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    shown = clip(media) or "none"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type must be application/json, got {shown}",
        detail=[
            {
                "field": "Content-Type",
                "reason": f"must be application/json, got {shown}",
                "message": f"Content-Type: must be application/json, got {shown}",
            }
        ],
    )


async def parse_body(
    request: Request, model: type[M], *, allowed: Mapping[str, list[Any]] | None = None
) -> M:
    """Validate the JSON body against `model`; 400/415/422/413 with field and reason otherwise."""
    check_json_content_type(request)
    return validate_body(await request.body(), model, allowed=allowed)


def validate_body(
    body: bytes, model: type[M], *, allowed: Mapping[str, list[Any]] | None = None
) -> M:
    try:
        item = model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(exc, allowed=allowed) from None
    # JSON parsers keep the last of two equal keys; a body that names a field twice is refused
    # as ambiguous. Cheap check first: every key is followed by a colon, so when the body has no
    # more colons than the validated objects have keys, no key can be repeated. Only bodies with
    # colons inside text values (or a repeated key) pay for the exact look.
    if body.count(b":") > _keys_in(item):
        _refuse_duplicate_keys(body)
    return item


def _keys_in(item: BaseModel) -> int:
    """Keys the validated body held (objects nested in fields and lists included)."""
    count = len(item.model_fields_set)
    for name in _nested_fields(type(item)):  # none for a customer: the hot path stays cheap
        value = getattr(item, name)
        if isinstance(value, BaseModel):
            count += _keys_in(value)
        elif isinstance(value, list):
            count += sum(_keys_in(v) for v in value if isinstance(v, BaseModel))
    return count


@functools.cache
def _nested_fields(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(
        name for name, field in model.model_fields.items() if _holds_model(field.annotation)
    )


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


def _refuse_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(body: bytes) -> None:
    """400 naming the first key that appears twice in one JSON object."""
    try:
        json.loads(body, object_pairs_hook=_refuse_pairs)
    except _DuplicateKeyError as exc:
        field = clip(exc.key)
        reason = "appears more than once in one object; ambiguous, send it once"
        raise ApiError(
            400,
            "ambiguous_json",
            f"{field}: {reason}",
            detail=[{"field": field, "reason": reason, "message": f"{field}: {reason}"}],
        ) from None
    except ValueError:  # valid for pydantic, so only a stdlib quirk; nothing repeated was found
        return


def request_id_of(raw: bytes | None) -> str | None:
    """The `X-Request-ID` header as sent (UTF-8 text), or None; 400 naming the header otherwise.

    Stored exactly as sent: never re-decoded as Latin-1 (mojibake), never silently cut.
    """
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or len(text) > MAX_REQUEST_ID or not text.isprintable():
        reason = f"must be at most {MAX_REQUEST_ID} printable characters of UTF-8 text"
        raise ApiError(
            400,
            "bad_request",
            f"X-Request-ID: {reason}",
            detail=[
                {"field": "X-Request-ID", "reason": reason, "message": f"X-Request-ID: {reason}"}
            ],
        )
    return text


def log_request_id(raw: bytes | None) -> str:
    """The id a request's log lines carry: the client's `X-Request-ID` when it is one the store
    would take, else a new random one (never an error: a bad header is answered by the route)."""
    if raw:
        try:
            found = request_id_of(raw)
        except ApiError:
            found = None
        if found is not None:
            return found
    return os.urandom(8).hex()
