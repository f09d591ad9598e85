"""Log output formats: plain text (the default) or JSON lines for log pipelines.

`--log-format json` (or CHURNOPS_LOG_FORMAT=json) makes every process of a command, the API's
uvicorn workers and the store writer child included, write one JSON object per line on stderr:
time, level, logger, event, pid, then request_id and model_version when known and the exception text
when there is one. The environment variable is how the choice reaches child processes.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_FORMAT_ENV = "CHURNOPS_LOG_FORMAT"
# Fields a caller may attach to every line logged while they apply (e.g. the API's request id).
CONTEXT_FIELDS = ("request_id", "model_version")
_context: ContextVar[dict[str, str] | None] = ContextVar("churnops_log_context", default=None)
_process_fields: dict[str, str] = {}
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def requested_format() -> LogFormat:
    """The format the environment asks for (text unless CHURNOPS_LOG_FORMAT=json)."""
    return "json" if os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json" else "text"


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Attach `fields` (request_id, model_version...) to every line logged inside the block."""
    current = dict(_context.get() or {})
    current.update({key: str(value) for key, value in fields.items() if value is not None})
    token = _context.set(current)
    try:
        yield
    finally:
        _context.reset(token)


def bind_request(request_id: str, model_version: str | None) -> Token[dict[str, str] | None]:
    """The API's per-request context, set in well under a microsecond (`log_context` costs a few:
    a generator and a merge); give the token back to `unbind` when the request is done."""
    fields = {"request_id": request_id}
    if model_version is not None:
        fields["model_version"] = model_version
    return _context.set(fields)


def unbind(token: Token[dict[str, str] | None]) -> None:
    _context.reset(token)


def set_process_fields(**fields: str | None) -> None:
    """Fields for every line of this process from now on (e.g. the model version being served)."""
    for key, value in fields.items():
        if value is None:
            _process_fields.pop(key, None)
        else:
            _process_fields[key] = str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra=` fields and context fields are kept."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,  # which worker (or writer child) of a server
        }
        line.update(_process_fields)
        line.update(_context.get() or {})
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            line.update(_access_fields(record.args))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in ("color_message",):
                line[key] = value
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    """uvicorn's access line arguments: (client, method, path, http version, status)."""
    if len(args) != 5:
        return {}
    client, method, path, http_version, status = args
    return {
        "client": client,
        "method": method,
        "path": path,
        "http_version": http_version,
        "status": status,
    }


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler()  # stderr: stdout stays for command output
    handler.setFormatter(JsonFormatter())
    return handler


def configure_process_logging(text_format: str, *, level: int = logging.WARNING) -> None:
    """Logging for a helper process (the store writer child): JSON when the environment asks for
    it, else `text_format`; churnops' own events at INFO either way."""
    if requested_format() == "json":
        logging.basicConfig(level=level, handlers=[json_handler()], force=True)
    else:
        logging.basicConfig(level=level, format=text_format)
    logging.getLogger("churnops").setLevel(logging.INFO)


def uvicorn_log_config(*, access_log: bool, verbose: bool = False) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn in JSON mode; uvicorn applies it in every worker,
    so the workers' churnops and uvicorn lines are JSON too."""
    formatter = {"()": f"{__name__}.JsonFormatter"}
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {"json": handler},
        "root": {"handlers": ["json"], "level": "WARNING"},
        "loggers": {
            "churnops": {"level": "DEBUG" if verbose else "INFO"},
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {
                "handlers": ["json"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
        },
    }


class JsonLinesWriter:
    """A text stream for a Rich console in JSON mode: each line the console prints on stderr
    (a banner, a progress line, `error: ...`) becomes one JSON log object, so that every line of
    stderr parses. The target stream is looked up at each write (tests swap sys.stderr)."""

    def __init__(self, logger: str = "churnops.cli") -> None:
        self.logger = logger
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        sys.stderr.flush()

    def isatty(self) -> bool:
        return False

    def _emit(self, line: str) -> None:
        event = line.strip()
        if not event:
            return
        level = "error" if event.startswith("error:") else "info"
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "logger": self.logger,
            "event": event,
            "pid": os.getpid(),
        }
        sys.stderr.write(orjson.dumps(record).decode() + "\n")
