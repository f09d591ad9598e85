"""Alerts: one per incident, not one per check.

An incident opens when a condition (dataset drift, prediction drift, performance degradation, data
quality) first holds; that sends one log line and, when a webhook is configured, one JSON POST.
While it keeps holding nothing more is sent; when it stops holding the incident closes (logged, and
posted only if `notify_resolved`). Open incidents live in a small JSON state file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from churnops.monitoring.monitor import MonitoringReport

logger = logging.getLogger(__name__)

IncidentKind = Literal[
    "dataset_drift",
    "prediction_drift",
    "performance_degradation",
    "estimated_performance_degradation",
    "data_quality",
]
DEFAULT_TIMEOUT_SECONDS = 3.0


class Incident(BaseModel):
    kind: str
    opened_at: datetime
    last_seen: datetime
    checks: int = 1
    details: dict[str, Any] = Field(default_factory=dict)
    delivered: bool = True  # False: the webhook failed; the next check posts it again


class AlertState(BaseModel):
    """What is open now; closed incidents are only counted."""

    open: dict[str, Incident] = Field(default_factory=dict)
    closed_count: int = 0

    @classmethod
    def load(cls, path: Path) -> AlertState:
        if not path.exists():
            return cls()
        try:
            return cls.model_validate_json(path.read_text())
        except ValueError:
            logger.warning("alert state %s is unreadable; starting with no open incidents", path)
            return cls()

    def save(self, path: Path) -> None:
        """Write atomically, so a crash never leaves half a state file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2))
        Path(tmp).replace(path)


class AlertEvent(BaseModel):
    """An incident that opened or closed in this check."""

    kind: str
    action: Literal["opened", "resolved"]
    at: datetime
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    delivered: bool | None = None  # None: no webhook configured / not posted


def conditions(report: MonitoringReport) -> dict[str, tuple[str, dict[str, Any]]]:
    """The incident kinds that hold for this report, each with a message and details."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    drift = report.drift
    if drift.dataset_drift:
        found["dataset_drift"] = (
            f"dataset drift: {drift.n_drifted}/{drift.n_features} features drifted "
            f"({', '.join(drift.drifted_features)})",
            {"share_drifted": drift.share_drifted, "features": drift.drifted_features},
        )
    if report.prediction is not None and report.prediction.drifted:
        pred = report.prediction
        found["prediction_drift"] = (
            f"prediction drift: score PSI {pred.psi:.3f}, mean score "
            f"{pred.reference_mean:.3f} -> {pred.current_mean:.3f}",
            {"psi": pred.psi, "js_distance": pred.js_distance, "reasons": pred.reasons},
        )
    perf = report.performance
    if perf is not None and perf.degraded:
        found["performance_degradation"] = ("; ".join(perf.reasons), {"drops": perf.drops})
    elif perf is not None and perf.estimated_degraded and perf.realised is None:
        found["estimated_performance_degradation"] = (
            "; ".join(perf.reasons),
            {"estimated_drops": perf.estimated_drops},
        )
    if report.quality.has_issues:
        found["data_quality"] = (
            f"data quality: {len(report.quality.issues)} issue(s): "
            + "; ".join(report.quality.issues[:5]),
            {"issues": report.quality.issues},
        )
    return found


class AlertManager:
    """Turns successive monitoring reports into incident open/close events and notifications."""

    def __init__(
        self,
        state_path: str | Path,
        *,
        webhook_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        notify_resolved: bool = False,
    ) -> None:
        self.state_path = Path(state_path)
        self.webhook_url = webhook_url
        self.timeout = timeout
        self.notify_resolved = notify_resolved

    def process(self, report: MonitoringReport, *, now: datetime | None = None) -> list[AlertEvent]:
        """Update incidents from a report; log and post what opened (and closed).

        Checks that run at the same time (a schedule and someone's manual run) take turns on the
        state file: each reads what the previous one saved, so an incident is announced once.
        """
        with _exclusive(self.state_path):
            return self._process(report, now=now or datetime.now(UTC))

    def _process(self, report: MonitoringReport, *, now: datetime) -> list[AlertEvent]:
        state = AlertState.load(self.state_path)
        holding = conditions(report)
        events: list[AlertEvent] = []
        for kind, (message, details) in holding.items():
            incident = state.open.get(kind)
            if incident is not None:
                incident.last_seen = now
                incident.checks += 1
                if incident.delivered or not self.webhook_url:
                    continue
                # Opened earlier but never delivered: one incident must reach someone once.
                events.append(
                    AlertEvent(kind=kind, action="opened", at=now, message=message, details=details)
                )
                continue
            state.open[kind] = Incident(kind=kind, opened_at=now, last_seen=now, details=details)
            events.append(
                AlertEvent(kind=kind, action="opened", at=now, message=message, details=details)
            )
        for kind in [k for k in state.open if k not in holding]:
            incident = state.open.pop(kind)
            state.closed_count += 1
            events.append(
                AlertEvent(
                    kind=kind,
                    action="resolved",
                    at=now,
                    message=f"{kind} resolved after {incident.checks} check(s)",
                    details={"opened_at": incident.opened_at.isoformat()},
                )
            )
        for event in events:
            self._notify(event, report)
            if event.action == "opened" and event.kind in state.open:
                state.open[event.kind].delivered = event.delivered is not False
        state.save(self.state_path)
        return events

    def _notify(self, event: AlertEvent, report: MonitoringReport) -> None:
        log = logger.warning if event.action == "opened" else logger.info
        log("churnops alert %s %s: %s", event.kind, event.action, event.message)
        if not self.webhook_url or (event.action == "resolved" and not self.notify_resolved):
            return
        payload = {
            "source": "churnops",
            "kind": event.kind,
            "action": event.action,
            "at": event.at.isoformat(),
            "message": event.message,
            "details": event.details,
            "summary": report.headline(),
        }
        event.delivered = post_webhook(self.webhook_url, payload, timeout=self.timeout)


@contextmanager
def _exclusive(state_path: Path) -> Iterator[None]:
    """An exclusive lock on `<state>.lock` (advisory, released if the process dies)."""
    state_path.parent.mkdir(parents=True, exist_ok=True)
    with state_path.with_name(state_path.name + ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def post_webhook(url: str, payload: dict[str, Any], *, timeout: float) -> bool:
    """POST JSON once; failures are logged and reported as False, never raised."""
    try:
        response = httpx.post(
            url,
            content=json.dumps(payload, default=str),
            timeout=timeout,
            headers={"content-type": "application/json"},
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        logger.error("alert webhook %s failed: %s", url, exc)
        return False
    return True
