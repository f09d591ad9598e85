"""The loop hands a shadow batch to the shadow thread and waits a bounded slice for it: a
challenger that scores in time is done when the hand-over returns; a slow one is not waited for."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from churnops.api import rollout as rollout_module
from churnops.api.metrics import ApiMetrics
from churnops.api.reload import LoadedModel
from churnops.api.rollout import Rollout, Route, ShadowJob
from churnops.settings import Settings


@dataclass
class _Scores:
    probability: np.ndarray
    will_churn: np.ndarray
    risk_level: np.ndarray


class _Scorer:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.release = threading.Event()

    def score_records(self, records: list[dict[str, Any]], *, reasons: bool = True) -> _Scores:
        if self.delay:
            self.release.wait(self.delay)
        p = np.array([float(r["x"]) for r in records])
        return _Scores(p, p >= 0.5, np.array(["low"] * len(p), dtype=object))


class _Writer:
    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.two = threading.Event()

    def enqueue_shadow(self, name: str, version: str, rows: list[Any]) -> None:
        self.rows += rows
        if len(self.rows) >= 2:
            self.two.set()


def _rollout(scorer: _Scorer, writer: _Writer) -> tuple[Rollout, LoadedModel]:
    model = LoadedModel(scorer, None, "m", "2", "models:/m/2", None)
    rollout = Rollout(
        Settings(), load=lambda uri: model, store=lambda: None, metrics=ApiMetrics(),
        writer=lambda: writer, reload_champion=lambda: None,  # type: ignore[return-value]
        champion=lambda: model,
    )  # fmt: skip
    rollout.route = Route(mode="shadow", challenger=model, timeout=1000.0)
    return rollout, model


def _job(model: LoadedModel, i: int) -> ShadowJob:
    return ShadowJob(
        model, [{"x": i / 10}], [f"p{i}"], "2026-01-01T00:00:00+00:00", time.perf_counter()
    )


def _hand_over(rollout: Rollout, jobs: list[ShadowJob], *, idle: bool = True) -> float:
    """Queue `jobs` as requests would and run the hand-over; how long the loop was held."""

    async def go() -> float:
        rollout.start_thread()
        deadline = time.monotonic() + 10
        while idle and not rollout.shadow_idle() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)  # the thread waits for work (or is busy: then no wait)
        rollout._pending.extend(jobs)
        started = time.perf_counter()
        rollout._hand_over()
        return time.perf_counter() - started

    return asyncio.run(go())


def test_a_challenger_in_time_has_scored_the_batch_when_the_hand_over_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rollout_module, "SHADOW_SLICE_SECONDS", 30.0)
    writer = _Writer()
    rollout, model = _rollout(_Scorer(), writer)
    try:
        _hand_over(rollout, [_job(model, i) for i in range(5)])
        assert [row[0] for row in writer.rows] == [f"p{i}" for i in range(5)]
        assert [row[2] for row in writer.rows] == [i / 10 for i in range(5)]
    finally:
        rollout.stop_thread()


def test_a_slow_challenger_holds_the_loop_no_longer_than_the_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rollout_module, "SHADOW_SLICE_SECONDS", 0.05)
    scorer = _Scorer(delay=30.0)
    writer = _Writer()
    rollout, model = _rollout(scorer, writer)
    try:
        held = _hand_over(rollout, [_job(model, 1)])
        assert 0.04 < held < 5.0 and writer.rows == []  # waited its slice, then went on
        # The thread is still busy with that batch: the next hand-over does not wait at all.
        monkeypatch.setattr(rollout_module, "SHADOW_SLICE_SECONDS", 30.0)
        assert _hand_over(rollout, [_job(model, 2)], idle=False) < 5.0
        scorer.release.set()
        assert writer.two.wait(10)  # both batches scored and stored in the end
        assert sorted(row[0] for row in writer.rows) == ["p1", "p2"]
    finally:
        scorer.release.set()
        rollout.stop_thread()
