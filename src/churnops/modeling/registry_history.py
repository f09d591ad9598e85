"""Read-only views of the registry: each version's metrics, leakage flags and alias history.

`registry.py` moves aliases and records who/when/why as tags; this module only reads those tags,
the training run's metrics and its logged artifacts back, for screens that compare versions.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churnops.errors import ModelNotFoundError, RegistryError
from churnops.modeling.registry import HISTORY_TAG, VersionSummary, list_versions

# Alias moves recorded by registry._record as churnops.<action>_{by,at,why}.
ACTIONS = ("promoted", "rolled_back_from", "rolled_back_to")
ROC_PLOT = "plots/roc.png"
LEAKAGE_FLAGS = "leakage/flags.json"
PROFILE_ARTIFACT = "reference_profile.json"  # as modeling.pyfunc.log_churn_model names it


@dataclass(frozen=True)
class RegistryEvent:
    """One recorded alias move (or gate decision) of a version."""

    version: str
    action: str  # promoted, rolled_back_from, rolled_back_to, gate
    at: str | None
    by: str | None
    why: str | None


@dataclass(frozen=True)
class VersionDetails:
    """A version as a comparison screen needs it: summary, run metrics, tags, leakage flags."""

    summary: VersionSummary
    metrics: dict[str, float] = field(default_factory=dict)  # the winner's cv_* and test_*
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    leakage_flags: list[str] = field(default_factory=list)
    events: list[RegistryEvent] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.summary.version


def version_events(version: str, tags: dict[str, str]) -> list[RegistryEvent]:
    """The alias moves and the gate decision recorded on a version's tags."""
    events = [
        RegistryEvent(
            version=version,
            action=action,
            at=tags.get(f"churnops.{action}_at"),
            by=tags.get(f"churnops.{action}_by"),
            why=tags.get(f"churnops.{action}_why"),
        )
        for action in ACTIONS
        if f"churnops.{action}_at" in tags
    ]
    if "churnops.gate" in tags:
        events.append(
            RegistryEvent(
                version=version,
                action=f"gate {tags['churnops.gate']}",
                at=None,
                by="training",
                why=tags.get("churnops.gate_reason"),
            )
        )
    return events


def _leakage_flags(client: MlflowClient, run_id: str) -> list[str]:
    raw = run_artifact(client, run_id, LEAKAGE_FLAGS)
    if raw is None:
        return []
    try:
        flags: list[dict[str, Any]] = json.loads(raw).get("flags", [])
    except (ValueError, AttributeError):
        return ["(leakage flags unreadable)"]
    return [_flag_text(flag) for flag in flags]


def _flag_text(flag: dict[str, Any]) -> str:
    """As `LeakageFlag.__str__` words it: kind, name, ROC-AUC against the limit."""
    try:
        return (
            f"{flag['kind']} {flag['name']!r}: ROC-AUC {float(flag['roc_auc']):.4f} "
            f">= {flag['limit']}"
        )
    except (KeyError, TypeError, ValueError):
        return json.dumps(flag)


def version_details(client: MlflowClient, *, name: str) -> list[VersionDetails]:
    """Every version of `name`, newest first, with its run's metrics and its history.

    `ModelNotFoundError` when nothing is registered under `name` yet; `RegistryError` when the
    registry cannot be read.
    """
    details: list[VersionDetails] = []
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelNotFoundError(f"no registered model named {name!r}") from exc
        raise RegistryError(f"cannot read the registry: {exc.message}") from exc
    try:
        summaries = list_versions(client, name=name)
        for summary in summaries:
            tags = dict(client.get_model_version(name, summary.version).tags)
            metrics: dict[str, float] = {}
            params: dict[str, str] = {}
            flags: list[str] = []
            if summary.run_id:
                run = client.get_run(summary.run_id)
                metrics = {k: v for k, v in run.data.metrics.items() if "." not in k}
                params = dict(run.data.params)
                if summary.leakage:
                    flags = _leakage_flags(client, summary.run_id)
            details.append(
                VersionDetails(
                    summary=summary,
                    metrics=metrics,
                    params=params,
                    tags=tags,
                    leakage_flags=flags,
                    events=version_events(summary.version, tags),
                )
            )
    except MlflowException as exc:
        raise RegistryError(f"cannot read the registry: {exc.message}") from exc
    return details


def champion_history(client: MlflowClient, *, name: str) -> list[str]:
    """Previous champions, oldest first (what rollback walks back through)."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        raise RegistryError(f"cannot read the registry: {exc.message}") from exc
    return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]


def run_artifact(client: MlflowClient, run_id: str, path: str) -> bytes | None:
    """The bytes of one artifact of a run, or None when the run did not log it."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except (MlflowException, OSError):
            return None
        file = Path(local)
        return file.read_bytes() if file.is_file() else None


def reference_profile_json(tracking_uri: str, *, name: str, version: str) -> str | None:
    """The reference profile a version carries (the JSON sidecar `log_churn_model` logs beside
    the bundle), without downloading the bundle itself; None when the version has none.

    The artifact location is resolved through this client, never through MLflow's global
    registry URI (a `models:/` download would use that one, whatever the client says).
    """
    from mlflow.artifacts import download_artifacts

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = client.get_model_version(name, version)
        location = found.source or ""
        if location.startswith("models:/"):  # an MLflow 3 logged model: models:/<model_id>
            model_id = found.model_id or location.removeprefix("models:/").split("/")[0]
            location = client.get_logged_model(model_id).artifact_location
    except MlflowException as exc:
        raise RegistryError(f"cannot read {name!r} version {version}: {exc.message}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = download_artifacts(
                artifact_uri=f"{location.rstrip('/')}/artifacts/{PROFILE_ARTIFACT}",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
        except (MlflowException, OSError):
            return None
        file = Path(local)
        return file.read_text() if file.is_file() else None
