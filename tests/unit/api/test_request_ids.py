"""The request id every log line of a request carries, and the cheap per-request log context."""

from __future__ import annotations

import logging

import orjson

from churnops.api.body import MAX_REQUEST_ID, log_request_id
from churnops.logformat import JsonFormatter, bind_request, log_context, unbind


def test_the_clients_id_is_kept_when_the_store_would_take_it() -> None:
    assert log_request_id("crm-42/é".encode()) == "crm-42/é"
    assert log_request_id(b"x" * MAX_REQUEST_ID) == "x" * MAX_REQUEST_ID


def test_a_missing_or_unusable_id_is_replaced_by_a_new_one() -> None:
    made = {
        log_request_id(raw)
        for raw in (None, b"", b"x" * (MAX_REQUEST_ID + 1), b"\xff\xfe", b"a\nb")
    }
    assert len(made) == 5  # each request its own
    assert all(len(rid) == 16 and int(rid, 16) >= 0 for rid in made)


def _line(message: str) -> dict[str, object]:
    record = logging.LogRecord("churnops.api", logging.INFO, __file__, 1, message, None, None)
    return orjson.loads(JsonFormatter().format(record))


def test_bound_fields_reach_json_lines_and_are_removed_after() -> None:
    token = bind_request("req-1", "7")
    try:
        line = _line("inside")
        assert line["request_id"] == "req-1" and line["model_version"] == "7"
        with log_context(model_version="8"):  # a nested context adds to the request's
            nested = _line("nested")
            assert nested["request_id"] == "req-1" and nested["model_version"] == "8"
    finally:
        unbind(token)
    assert "request_id" not in _line("after")
