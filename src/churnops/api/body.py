"""Raw request bodies: content type checked (415), then validated straight from bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from churnops.api.errors import ApiError, validation_error

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
    shown = media or "none"
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
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(exc, allowed=allowed) from None
