"""Which alias a version held when it scored, from the registry's recorded moves and decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from churnops.modeling.registry_history import RegistryEvent
from churnops.operations.trace import alias_at, champion_moves
from churnops.store.decisions import Decision

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def event(version: str, action: str, hours: float) -> RegistryEvent:
    return RegistryEvent(version, action, at(hours).isoformat(timespec="seconds"), "me", "why")


CREATED = {"1": at(0), "2": at(10), "3": at(20)}
EVENTS = [
    event("1", "promoted", 0.5),
    event("2", "promoted", 11),
    event("2", "rolled_back_from", 15),
    event("1", "rolled_back_to", 15),
    event("3", "gate held", 21),  # not an alias move
]
MOVES = champion_moves(EVENTS, [])


def test_champion_then_challenger_then_none() -> None:
    assert alias_at("1", at(5), moves=MOVES, created=CREATED) == "champion"
    assert alias_at("2", at(10.5), moves=MOVES, created=CREATED) == "challenger"
    assert alias_at("2", at(12), moves=MOVES, created=CREATED) == "champion"
    assert alias_at("1", at(12), moves=MOVES, created=CREATED) == "none"


def test_a_rollback_gives_the_alias_back() -> None:
    assert alias_at("1", at(16), moves=MOVES, created=CREATED) == "champion"
    # A rollback moves only the champion: v2 is still the newest, so still the challenger.
    assert alias_at("2", at(16), moves=MOVES, created=CREATED) == "challenger"
    assert alias_at("2", at(21), moves=MOVES, created=CREATED) == "none"
    assert alias_at("3", at(22), moves=MOVES, created=CREATED) == "challenger"


def test_decisions_move_the_champion_too() -> None:
    decision = Decision(
        kind="deployment", outcome="promoted", model_name="m", to_version="3", created_at=at(30)
    )
    moves = champion_moves(EVENTS, [decision])
    assert alias_at("3", at(31), moves=moves, created=CREATED) == "champion"
    assert alias_at("3", at(29), moves=moves, created=CREATED) == "challenger"


def test_nothing_recorded_is_unknown() -> None:
    assert alias_at("1", at(30), moves=[], created=CREATED) == "unknown"
    assert alias_at("3", at(30), moves=[], created=CREATED) == "challenger"
