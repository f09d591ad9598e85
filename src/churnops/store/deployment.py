"""The deployment policy row every worker routes by, its counters, and shadow scores.

One row per model in `deployment_policy`. Every change goes through `save_policy`, a
compare-and-set on `revision`: two workers (or a worker and `churnops deploy`) deciding at the
same moment change it once, and the loser learns it. Workers add what only they see (a challenger
that raised or ran out of time) with `add_counters`, an atomic `x = x + n` in SQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.models import DeploymentPolicyRow, ShadowPredictionRow, to_utc
from churnops.store.records import to_jsonable, utcnow
from churnops.store.store import PredictionStore

POLICIES: Table = DeploymentPolicyRow.__table__  # type: ignore[assignment]
SHADOWS: Table = ShadowPredictionRow.__table__  # type: ignore[assignment]
MODES: tuple[str, ...] = ("none", "shadow", "canary", "blue-green")
VARIANTS: tuple[str, ...] = ("champion", "challenger")
COUNTERS: tuple[str, ...] = (
    "challenger_errors",
    "challenger_timeouts",
    "champion_errors",
    "shadow_dropped",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """How one model's traffic is split between its champion and a challenger."""

    model_name: str
    deployment_id: str
    mode: str = "none"
    champion_version: str | None = None
    challenger_version: str | None = None
    weight: float = 0.0  # canary: percent of customers the challenger answers
    step: int = 0  # canary: index into `steps`
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    live: str = "champion"  # blue-green: the side that answers
    salt: str = ""
    sample_rate: float = 1.0  # shadow: share of requests the challenger also scores
    timeout_ms: float = 100.0  # shadow: a challenger score later than this is discarded
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    auto: bool = True
    revision: int = 0
    started_at: datetime = field(default_factory=utcnow)
    step_started_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    reason: str | None = None
    actor: str | None = None
    challenger_errors: int = 0
    challenger_timeouts: int = 0
    champion_errors: int = 0
    shadow_dropped: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.live not in VARIANTS:
            raise ValueError(f"live must be one of {VARIANTS}, got {self.live!r}")
        object.__setattr__(self, "steps", tuple(float(s) for s in self.steps))

    @property
    def active(self) -> bool:
        """A challenger is in play (shadow, canary or blue-green)."""
        return self.mode != "none" and self.challenger_version is not None

    def changed(self, **values: Any) -> Policy:
        """A copy with `values` changed and the counters of the row kept."""
        return dataclasses.replace(self, **values)

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        row["steps"] = list(self.steps)
        row["thresholds"] = to_jsonable(dict(self.thresholds))
        for name in ("started_at", "step_started_at", "updated_at"):
            row[name] = to_utc(row[name])
        return row

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready (timestamps as ISO text): `GET /deployment`, `churnops deploy status`."""
        row = self.to_row()
        for name in ("started_at", "step_started_at", "updated_at"):
            row[name] = row[name].isoformat()
        return row


def _policy(row: Mapping[str, Any]) -> Policy:
    values = dict(row)
    values.pop("evaluated_at", None)
    values["steps"] = tuple(values.get("steps") or ())
    values["thresholds"] = dict(values.get("thresholds") or {})
    return Policy(**values)


def read_policy(store: PredictionStore, model_name: str) -> Policy | None:
    """The model's policy, or None when none was ever set."""
    stmt = select(POLICIES).where(POLICIES.c.model_name == model_name)
    try:
        with store.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot read the deployment policy: {exc}") from exc
    return None if row is None else _policy(dict(row))


def save_policy(store: PredictionStore, policy: Policy, *, expected_revision: int) -> Policy | None:
    """Store `policy` as revision `expected_revision + 1` if the stored one is still
    `expected_revision` (0: none stored yet); the stored policy, or None when someone else
    changed it first. Counters start at zero with a new `deployment_id`, else they are kept."""
    new = policy.changed(revision=expected_revision + 1, updated_at=utcnow())
    row = new.to_row()
    try:
        with store.engine.begin() as conn:
            if expected_revision == 0:
                try:
                    conn.execute(insert(POLICIES).values(**row))
                except IntegrityError:
                    return None
                return new
            current = conn.execute(
                select(POLICIES.c.deployment_id, POLICIES.c.revision).where(
                    POLICIES.c.model_name == policy.model_name
                )
            ).first()
            if current is None or current.revision != expected_revision:
                return None
            if current.deployment_id == policy.deployment_id:
                for name in COUNTERS:  # workers may have added to them since it was read
                    row.pop(name)
            else:
                row.update(dict.fromkeys(COUNTERS, 0))
            result = conn.execute(
                update(POLICIES)
                .where(POLICIES.c.model_name == policy.model_name)
                .where(POLICIES.c.revision == expected_revision)
                .values(**row)
            )
            if result.rowcount != 1:
                return None
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot save the deployment policy: {exc}") from exc
    return read_policy(store, policy.model_name)


def claim_evaluation(
    store: PredictionStore, *, model_name: str, deployment_id: str, every_seconds: float
) -> bool:
    """Take the evaluation lease: True for the one worker (of any replica) that judges the
    deployment now; the others skip until `every_seconds` have passed. Judging costs a
    bootstrap: once per interval is enough, N workers doing it would only repeat it."""
    now = utcnow()
    stale = now - timedelta(seconds=every_seconds)
    stmt = (
        update(POLICIES)
        .where(POLICIES.c.model_name == model_name)
        .where(POLICIES.c.deployment_id == deployment_id)
        .where(or_(POLICIES.c.evaluated_at.is_(None), POLICIES.c.evaluated_at <= stale))
        .values(evaluated_at=now)
    )
    try:
        with store.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot claim the evaluation: {exc}") from exc


def add_counters(
    store: PredictionStore, *, model_name: str, deployment_id: str, counts: Mapping[str, int]
) -> None:
    """Add a worker's counts to the policy's counters (only while it is the same deployment)."""
    values = {name: POLICIES.c[name] + int(n) for name, n in counts.items() if n}
    if not values:
        return
    unknown = set(counts) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown deployment counters: {sorted(unknown)}")
    stmt = (
        update(POLICIES)
        .where(POLICIES.c.model_name == model_name)
        .where(POLICIES.c.deployment_id == deployment_id)
        .values(**values)
    )
    try:
        with store.engine.begin() as conn:
            conn.execute(stmt)
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot count for the deployment: {exc}") from exc


SHADOW_COLUMNS = (
    "prediction_id",
    "created_at",
    "model_name",
    "model_version",
    "churn_probability",
    "will_churn",
    "risk_level",
    "latency_us",
)
_SQLITE_SHADOW_INSERT = (
    f"INSERT INTO shadow_predictions ({', '.join(SHADOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in SHADOW_COLUMNS)}) ON CONFLICT (prediction_id) DO NOTHING"
)


def _shadow_values(row: Mapping[str, Any]) -> dict[str, Any]:
    created = row["created_at"]
    return {
        "prediction_id": row["prediction_id"],
        "created_at": to_utc(
            created if isinstance(created, datetime) else datetime.fromisoformat(created)
        ),
        "model_name": row["model_name"],
        "model_version": str(row["model_version"]),
        "churn_probability": float(row["churn_probability"]),
        "will_churn": bool(row["will_churn"]),
        "risk_level": row["risk_level"],
        "latency_us": row.get("latency_us"),
    }


def _sqlite_stamp(created: Any) -> str:
    """A timestamp as the SQLite store keeps it: naive UTC text."""
    when = created if isinstance(created, datetime) else datetime.fromisoformat(created)
    return to_utc(when).replace(tzinfo=None).isoformat(" ", "microseconds")


def write_shadow_rows(store: PredictionStore, rows: Sequence[Sequence[Any]]) -> int:
    """`write_shadow_predictions` of plain rows in SHADOW_COLUMNS order (the store writer's).

    On SQLite no dict is built per row and each distinct `created_at` is converted once (a
    request's rows share one): the writer process shares the machine's cores with the API."""
    if not rows:
        return 0
    if store.dialect != "sqlite":
        return write_shadow_predictions(
            store, [dict(zip(SHADOW_COLUMNS, r, strict=True)) for r in rows]
        )
    stamps: dict[Any, str] = {}
    tuples = []
    for prediction_id, created, name, version, probability, will_churn, level, latency in rows:
        stamp = stamps.get(created)
        if stamp is None:
            stamp = stamps[created] = _sqlite_stamp(created)
        tuples.append(
            (prediction_id, stamp, name, str(version), float(probability),
             1 if will_churn else 0, level, latency)
        )  # fmt: skip
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(_SQLITE_SHADOW_INSERT, tuples)
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot write shadow scores: {exc}") from exc
    return len(tuples)


def write_shadow_predictions(store: PredictionStore, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert shadow scores (a prediction's second score is kept once); the number given.

    On SQLite the rows go to the driver as tuples (as `bulk_insert` does for predictions:
    SQLAlchemy's per-value processing cost ~35 µs a row in the writer process, which shares the
    machine's cores with the API)."""
    if not rows:
        return 0
    values = [_shadow_values(row) for row in rows]
    try:
        with store.engine.begin() as conn:
            if store.dialect == "sqlite":
                tuples = [
                    (
                        v["prediction_id"],
                        v["created_at"].replace(tzinfo=None).isoformat(" ", "microseconds"),
                        v["model_name"],
                        v["model_version"],
                        v["churn_probability"],
                        1 if v["will_churn"] else 0,
                        v["risk_level"],
                        v["latency_us"],
                    )
                    for v in values
                ]
                conn.exec_driver_sql(_SQLITE_SHADOW_INSERT, tuples)
            else:
                stmt = pg_insert(SHADOWS).on_conflict_do_nothing(index_elements=["prediction_id"])
                conn.execute(stmt, values)
    except SQLAlchemyError as exc:
        raise StoreError(f"prediction store: cannot write shadow scores: {exc}") from exc
    return len(values)
