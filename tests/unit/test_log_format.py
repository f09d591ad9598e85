"""The JSON log line: fields, context, exceptions, and console output turned into lines."""

from __future__ import annotations

import logging
import logging.config
import sys

import orjson
import pytest

from churnops.logformat import (
    JsonFormatter,
    JsonLinesWriter,
    log_context,
    set_process_fields,
    uvicorn_log_config,
)


def _record(
    message: str, *args: object, name: str = "churnops.api", **extra: object
) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(
        name, logging.WARNING, __file__, 1, message, args, None, extra=extra or None
    )


def test_a_line_has_time_level_logger_event_and_context() -> None:
    formatter = JsonFormatter()
    set_process_fields(model_version="7")
    try:
        with log_context(request_id="req-42"):
            line = orjson.loads(formatter.format(_record("store %s for %.1fs", "down", 2.0)))
        outside = orjson.loads(formatter.format(_record("plain")))
    finally:
        set_process_fields(model_version=None)
    assert line["level"] == "warning" and line["logger"] == "churnops.api"
    assert line["event"] == "store down for 2.0s"
    assert line["request_id"] == "req-42" and line["model_version"] == "7"
    assert line["time"].endswith("+00:00") and isinstance(line["pid"], int)
    assert "request_id" not in outside and outside["model_version"] == "7"
    extra = orjson.loads(formatter.format(_record("x", request_id="r-1", rows=3)))
    assert extra["request_id"] == "r-1" and extra["rows"] == 3


def test_exceptions_are_one_field_of_one_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad row\nsecond line")
    except ValueError:
        record = logging.getLogger("churnops").makeRecord(
            "churnops", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    text = formatter.format(record)
    assert "\n" not in text
    line = orjson.loads(text)
    assert line["exception"].startswith("Traceback") and "ValueError: bad row" in line["exception"]


def test_uvicorn_access_lines_keep_their_parts() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "POST",
        "/predict",
        "1.1",
        200,
        name="uvicorn.access",
    )
    line = orjson.loads(JsonFormatter().format(record))
    assert (line["method"], line["path"], line["status"]) == ("POST", "/predict", 200)
    config = uvicorn_log_config(access_log=True)
    factory = config["formatters"]["json"]["()"]
    assert logging.config.BaseConfigurator(config).resolve(factory) is JsonFormatter
    assert config["loggers"]["uvicorn.access"]["level"] == "INFO"


def test_console_output_becomes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    writer = JsonLinesWriter()
    writer.write("serving models:/m@champion on http://x\nerror: something ")
    writer.write("is wrong\n\n   \npartial")
    writer.flush()
    lines = [orjson.loads(raw) for raw in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == [
        "serving models:/m@champion on http://x",
        "error: something is wrong",
        "partial",
    ]
    assert [line["level"] for line in lines] == ["info", "error", "info"]
