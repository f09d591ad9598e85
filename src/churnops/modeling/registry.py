"""Model registry operations: register, the promotion gate, promote, rollback, list.

`champion` is what consumers serve; `challenger` is the newest candidate. Every alias move is
recorded as tags (who, when, why) on the version, and the champion history as a JSON tag on the
registered model so that rollback knows where to go back to.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from churnops.errors import RegistryError

if TYPE_CHECKING:  # mlflow is imported by the functions that call it: ModelIdentity stays light
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "churnops.champion_history"
# What MLflow 3 returns for a logged model: models:/m-<id>. A tracking *server* refuses such a
# source for a new version unless the version also names the model id (SQLite does not check).
_LOGGED_MODEL_URI = re.compile(r"^models:/(m-[0-9a-f]+)$")


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


@dataclass(frozen=True)
class VersionSummary:
    version: str
    aliases: list[str]
    candidate: str
    cv_roc_auc: float | None
    test_roc_auc: float | None
    threshold: float | None
    leakage: bool
    created_at: str
    run_id: str | None


@dataclass(frozen=True)
class ModelIdentity:
    """Which model scored: registered name and version (or the URI when not registered)."""

    name: str
    version: str
    uri: str

    @property
    def pinned_uri(self) -> str:
        """The resolved version's URI: loading it cannot race an alias move mid-run."""
        if self.uri.startswith("models:/") and self.version.isdigit():
            return f"models:/{self.name}/{self.version}"
        return self.uri


def model_identity(model_uri: str, client: MlflowClient | None = None) -> ModelIdentity:
    """Name and version behind `models:/name@alias`, `models:/name/3` or any other URI."""
    if model_uri.startswith("models:/"):
        rest = model_uri[len("models:/") :]
        if "@" in rest:
            name, alias = rest.split("@", 1)
            if client is not None:
                try:
                    version = client.get_model_version_by_alias(name, alias).version
                    return ModelIdentity(name, str(version), model_uri)
                except Exception as exc:  # unknown alias: load_scorer reports it better
                    logger.debug("cannot resolve %s: %s", model_uri, exc)
            return ModelIdentity(name, alias, model_uri)
        name, _, version = rest.partition("/")
        return ModelIdentity(name, version or "latest", model_uri)
    return ModelIdentity(model_uri, "unregistered", model_uri)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry in some containers
        return "unknown"


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_version(
    client: MlflowClient, *, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    """Register the logged model as a new version and give it the challenger alias."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="churnops churn-risk model")
    logged = _LOGGED_MODEL_URI.match(model_uri)
    version = client.create_model_version(
        name,
        source=model_uri,
        run_id=run_id,
        tags=tags,
        model_id=logged.group(1) if logged else None,
    )
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return client.get_model_version(name, version.version)


def promotion_decision(
    *,
    candidate_score: float,
    champion_score: float | None,
    margin: float,
    leakage_flags: list[str],
    allow_leakage: bool,
    metric: str = "test_roc_auc",
    validation_failures: Sequence[str] = (),
    validation_allowed: Sequence[str] = (),
) -> PromotionDecision:
    """The gate: no leakage (unless allowed), no blocking validation failure (those allowed are
    named in the reason), and no champion yet or better by `margin`."""
    if leakage_flags and not allow_leakage:
        return PromotionDecision(False, f"leakage flagged: {'; '.join(leakage_flags)}")
    if validation_failures:
        return PromotionDecision(False, f"validation failed: {'; '.join(validation_failures)}")
    allowed = f" (validation failures allowed: {'; '.join(validation_allowed)})"
    allowed = allowed if validation_allowed else ""
    if champion_score is None:
        return PromotionDecision(True, "no champion yet" + allowed)
    if candidate_score >= champion_score + margin:
        return PromotionDecision(
            True,
            f"{metric} {candidate_score:.4f} beats champion {champion_score:.4f} by >= {margin}"
            + allowed,
        )
    return PromotionDecision(
        False,
        f"{metric} {candidate_score:.4f} does not beat champion {champion_score:.4f} by {margin}",
    )


def _history(client: MlflowClient, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return list(json.loads(tags.get(HISTORY_TAG, "[]")))


def promote(client: MlflowClient, *, name: str, version: str, why: str) -> ModelVersion:
    """Move the champion alias to `version`, remembering the previous champion for rollback."""
    from mlflow.exceptions import MlflowException

    try:
        target = client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}") from exc
    current = alias_version(client, name, CHAMPION)
    if current is not None and current.version == target.version:
        raise RegistryError(f"version {version} of {name!r} is already the champion")
    history = _history(client, name)
    if current is not None:
        history.append(str(current.version))
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))
    client.set_registered_model_alias(name, CHAMPION, target.version)
    _record(client, name, target.version, "promoted", why)
    return client.get_model_version(name, target.version)


def rollback(client: MlflowClient, *, name: str, why: str) -> ModelVersion:
    """Give the champion alias back to the previous champion."""
    history = _history(client, name) if _exists(client, name) else []
    if not history:
        raise RegistryError(f"model {name!r} has no previous champion to roll back to")
    previous = history.pop()
    current = alias_version(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    if current is not None:
        _record(client, name, current.version, "rolled_back_from", why)
    _record(client, name, previous, "rolled_back_to", why)
    return client.get_model_version(name, previous)


def _exists(client: MlflowClient, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True


def _record(client: MlflowClient, name: str, version: str, action: str, why: str) -> None:
    client.set_model_version_tag(name, version, f"churnops.{action}_by", _who())
    client.set_model_version_tag(name, version, f"churnops.{action}_at", _now())
    client.set_model_version_tag(name, version, f"churnops.{action}_why", why)


def record_decision(
    client: MlflowClient, *, name: str, version: str, decision: PromotionDecision
) -> None:
    client.set_model_version_tag(
        name, version, "churnops.gate", "passed" if decision.promote else "held"
    )
    client.set_model_version_tag(name, version, "churnops.gate_reason", decision.reason)


def record_validation(
    client: MlflowClient, *, name: str, version: str, status: str, allowed: Sequence[str]
) -> None:
    """The version's validation verdict (passed, failed, overridden) and the failures allowed."""
    client.set_model_version_tag(name, version, "churnops.validation", status)
    if allowed:
        client.set_model_version_tag(
            name, version, "churnops.validation_allowed", "; ".join(allowed)
        )


def _float(tags: dict[str, Any], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def list_versions(client: MlflowClient, *, name: str) -> list[VersionSummary]:
    if not _exists(client, name):
        raise RegistryError(f"no registered model named {name!r}")
    versions = client.search_model_versions(f"name = '{name}'")
    # search results carry no aliases; the registered model holds the alias -> version map.
    by_version: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(name).aliases.items():
        by_version.setdefault(str(number), []).append(alias)
    summaries = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = dict(v.tags)
        summaries.append(
            VersionSummary(
                version=str(v.version),
                aliases=sorted(by_version.get(str(v.version), [])),
                candidate=tags.get("churnops.candidate", "?"),
                cv_roc_auc=_float(tags, "churnops.cv_roc_auc"),
                test_roc_auc=_float(tags, "churnops.test_roc_auc"),
                threshold=_float(tags, "churnops.threshold"),
                leakage=tags.get("churnops.leakage", "false") == "true",
                created_at=datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(
                    timespec="seconds"
                ),
                run_id=v.run_id,
            )
        )
    return summaries
