"""A retraining that fails after it started is recorded as `failed` with the reason and reported
as one ChurnopsError (never a traceback), and its (trigger, window) stays claimed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from churnops.errors import RetrainingError
from churnops.retraining import challenger
from churnops.retraining.context import loop_context
from churnops.retraining.loop import run_loop
from churnops.store.decisions import read_decisions
from tests.support.models import make_settings

pytestmark = pytest.mark.integration


def test_a_failed_training_is_recorded_and_raised_as_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise MemoryError("the training table did not fit")  # any unexpected failure

    monkeypatch.setattr(challenger, "train_on", broken)
    settings = make_settings(tmp_path)
    now = datetime(2026, 12, 1, 4, tzinfo=UTC)
    with loop_context(settings, now=now, actor="cron") as ctx:
        with pytest.raises(
            RetrainingError, match="the retraining \\(forced\\) failed: MemoryError"
        ):
            run_loop(ctx, force=True)
        failed, started = read_decisions(ctx.store)
    assert (started.outcome, failed.outcome) == ("started", "failed")
    assert failed.evidence["reason"] == "MemoryError: the training table did not fit"
    assert failed.idempotency_key == f"{started.idempotency_key}:result"
