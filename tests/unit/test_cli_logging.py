"""The CLI's log setup: churnops' own events show at INFO, other libraries only from ERROR."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from churnops.cli.console import setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("churnops", "mlflow")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


@pytest.mark.usefixtures("restore_logging")
def test_churnops_events_show_and_library_chatter_does_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(verbose=False)
    logging.getLogger("churnops.api.reload").info("serving churn-model version 7")
    logging.getLogger("churnops.store.writer").debug("batch of 3 written")
    logging.getLogger("mlflow.store").warning("migrating tables")
    logging.getLogger("somelib").info("connected")
    err = capsys.readouterr().err
    assert "serving churn-model version 7" in err
    assert "batch of 3" not in err and "migrating" not in err and "connected" not in err


@pytest.mark.usefixtures("restore_logging")
def test_verbose_shows_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(verbose=False)  # an earlier command in the same process must not hide it
    setup_logging(verbose=True)
    logging.getLogger("churnops.store.writer").debug("batch of 3 written")
    assert "batch of 3 written" in capsys.readouterr().err
