"""Where a prediction came from: the use case behind `churnops lineage`.

prediction (store) -> model version and the alias it held when it scored (the registry's
recorded alias moves and the decisions table) -> training run -> lineage manifest (data sources,
fingerprints, code) -> the promotion decisions about that version (gate, alias moves, decisions).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from churnops.errors import ChurnopsError, RegistryError
from churnops.modeling.registry import CHALLENGER, CHAMPION
from churnops.modeling.registry_history import RegistryEvent, version_events
from churnops.store.decisions import Decision, read_decisions
from churnops.store.lookup import StoredPrediction, find_prediction, latest_prediction
from churnops.store.store import PredictionStore

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

GAINS_CHAMPION = ("promoted", "rolled_back_to")
# Decision outcomes (store.decisions) after which `to_version` holds the champion alias.
CHAMPION_OUTCOMES = ("promoted", "rolled_back", "switched")


class UnknownPredictionError(ChurnopsError):
    """No stored prediction has this id (or the customer has none)."""


@dataclass(frozen=True)
class AliasMove:
    at: datetime
    version: str
    gains: bool  # True: the version became champion; False: it stopped being champion
    via: str  # what recorded it


@dataclass
class PredictionLineage:
    prediction: dict[str, Any]
    model: dict[str, Any]
    training_run: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    code: dict[str, Any] = field(default_factory=dict)
    registry_events: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def champion_moves(events: list[RegistryEvent], decisions: list[Decision]) -> list[AliasMove]:
    """Every recorded move of the champion alias, oldest first."""
    moves: list[AliasMove] = []
    for event in events:
        at = _parse(event.at)
        if at is None or event.action not in (*GAINS_CHAMPION, "rolled_back_from"):
            continue
        moves.append(AliasMove(at, event.version, event.action in GAINS_CHAMPION, "registry"))
    for decision in decisions:
        if decision.outcome in CHAMPION_OUTCOMES and decision.to_version and decision.created_at:
            moves.append(
                AliasMove(decision.created_at, str(decision.to_version), True, "decisions")
            )
    return sorted(moves, key=lambda m: m.at)


def alias_at(
    version: str,
    when: datetime,
    *,
    moves: list[AliasMove],
    created: dict[str, datetime],
) -> str:
    """`champion`, `challenger`, `none` or `unknown`: what `version` was called at `when`."""
    champion: str | None = None
    for move in moves:
        if move.at > when:
            break
        if move.gains:
            champion = move.version
        elif champion == move.version:
            champion = None
    if champion == version:
        return CHAMPION
    earlier = [v for v, at in created.items() if at <= when]
    newest = max(earlier, key=int) if earlier else None
    if newest == version:
        return CHALLENGER
    if champion is None and not moves:
        return "unknown"
    return "none"


def _prediction_dict(p: StoredPrediction) -> dict[str, Any]:
    return {
        "prediction_id": p.prediction_id,
        "created_at": p.created_at.isoformat(),
        "source": p.source,
        "request_id": p.request_id,
        "customer_id": p.customer_id,
        "churn_probability": p.churn_probability,
        "will_churn": p.will_churn,
        "risk_level": p.risk_level,
        "model_name": p.model_name,
        "model_version": p.model_version,
        "variant": p.variant,
    }


def _decision_dict(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": d.created_at.isoformat() if d.created_at else None,
        "kind": d.kind,
        "outcome": d.outcome,
        "trigger": d.trigger,
        "from_version": d.from_version,
        "to_version": d.to_version,
        "mlflow_run_id": d.mlflow_run_id,
        "actor": d.actor,
        "evidence": dict(d.evidence),
    }


def find_stored(
    store: PredictionStore, *, prediction_id: str | None, customer_id: str | None
) -> StoredPrediction:
    if prediction_id is not None:
        found = find_prediction(store, prediction_id)
        if found is None:
            raise UnknownPredictionError(f"no prediction with id {prediction_id!r} in the store")
        return found
    if customer_id is None:
        raise UnknownPredictionError("give a prediction id or --customer")
    found = latest_prediction(store, customer_id)
    if found is None:
        raise UnknownPredictionError(f"no prediction for customer {customer_id!r} in the store")
    return found


def prediction_lineage(
    store: PredictionStore,
    client: MlflowClient,
    *,
    prediction_id: str | None = None,
    customer_id: str | None = None,
) -> PredictionLineage:
    """The lineage of one stored prediction (by id, or the customer's latest)."""
    from mlflow.exceptions import MlflowException

    stored = find_stored(store, prediction_id=prediction_id, customer_id=customer_id)
    name, number = stored.model_name, stored.model_version
    result = PredictionLineage(
        prediction=_prediction_dict(stored), model={"name": name, "version": number}
    )
    try:
        version = client.get_model_version(name, number)
        all_versions = client.search_model_versions(f"name = '{name}'")
        aliases_now = client.get_registered_model(name).aliases
    except MlflowException as exc:
        result.notes.append(f"the registry has no {name} v{number}: {exc.message}")
        return result
    decisions = read_decisions(store, model_name=name, limit=1000)
    events = [e for v in all_versions for e in version_events(str(v.version), dict(v.tags))]
    created = {
        str(v.version): datetime.fromtimestamp(v.creation_timestamp / 1000, UTC)
        for v in all_versions
    }
    tags = dict(version.tags)
    result.model.update(
        {
            "run_id": version.run_id,
            "registered_at": created[number].isoformat(timespec="seconds"),
            "alias_at_prediction": alias_at(
                number, stored.created_at, moves=champion_moves(events, decisions), created=created
            ),
            "aliases_now": sorted(a for a, v in aliases_now.items() if str(v) == number),
            "candidate": tags.get("churnops.candidate"),
            "gate": tags.get("churnops.gate"),
            "gate_reason": tags.get("churnops.gate_reason"),
        }
    )
    result.registry_events = [asdict(e) for e in events if e.version == number]
    result.decisions = [
        _decision_dict(d) for d in decisions if number in (d.to_version, d.from_version)
    ]
    if version.run_id:
        _add_training_run(result, client, version.run_id)
    _add_manifest(result, client, name=name, version=number, tags=tags)
    return result


def _add_training_run(result: PredictionLineage, client: MlflowClient, run_id: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        result.notes.append(f"training run {run_id} cannot be read: {exc.message}")
        return
    result.training_run = {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "started_at": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(
            timespec="seconds"
        ),
        "status": run.info.status,
        "metrics": {k: v for k, v in sorted(run.data.metrics.items()) if "." not in k},
        "params": {
            k: run.data.params[k]
            for k in ("winner", "seed", "candidates", "threshold", "calibration")
            if k in run.data.params
        },
    }


def _add_manifest(
    result: PredictionLineage,
    client: MlflowClient,
    *,
    name: str,
    version: str,
    tags: dict[str, str],
) -> None:
    """The data sources, code and environment from the version's manifest (or why not)."""
    from churnops.modeling.lineage import read_manifest

    try:
        manifest = read_manifest(client, name=name, version=version)
    except RegistryError as exc:
        result.notes.append(str(exc))
        result.data = {"fingerprint": tags.get("churnops.data_fingerprint")}
        return
    result.data = {
        "fingerprint": manifest.data_fingerprint,
        "rows": manifest.data_rows,
        "sources": [asdict(s) for s in manifest.sources],
    }
    result.code = {**manifest.code, "libraries": manifest.libraries, "seeds": manifest.seeds}
    if not manifest.repeatable:
        result.notes.append("tuning was cut short by the time budget (churnops verify replays it)")
