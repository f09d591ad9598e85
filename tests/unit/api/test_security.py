"""API key hashing, verification, keys file; the in-process rate limiter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from churnops.api.ratelimit import InProcessLimiter
from churnops.apikeys import (
    KeyRing,
    add_key,
    bearer_token,
    hash_key,
    parse_hash,
    revoke_key,
)
from churnops.errors import ConfigError


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_key("k"), hash_key("k")
    assert first != second and first.startswith("sha256$")
    ring = KeyRing([first])
    assert ring.verify("k") == parse_hash(first).key_id
    assert ring.verify("other") is None
    assert not KeyRing([]).enabled


def test_malformed_hash_is_a_config_error() -> None:
    for bad in ("plain", "md5$00$00", "sha256$zz$00", "sha256$00$0011"):
        with pytest.raises(ConfigError):
            parse_hash(bad)


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key, entry = add_key(path, name="crm")
    assert key not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ring = KeyRing(["sha256$00$" + "0" * 64], keys_file=path)
    assert len(ring.keys) == 2 and ring.verify(key) == entry["id"]
    assert revoke_key(path, entry["id"]) and not revoke_key(path, entry["id"])
    assert json.loads(path.read_text()) == {"keys": []}


def test_key_ring_follows_the_keys_file(tmp_path: Path) -> None:
    """Revoked keys stop working and new ones start working without a restart."""
    path = tmp_path / "keys.json"
    first, first_entry = add_key(path)
    ring = KeyRing([], keys_file=path, recheck_seconds=0.0)
    assert ring.verify(first) == first_entry["id"]  # now also cached
    second, second_entry = add_key(path)
    assert ring.verify(second) == second_entry["id"]
    revoke_key(path, first_entry["id"])
    assert ring.verify(first) is None  # the cache went with the old keys
    path.write_text("{not json")  # a broken edit: keep the keys we had, do not open up
    assert ring.verify(second) == second_entry["id"] and ring.enabled
    moved = path.rename(tmp_path / "moved.json")  # gone for a moment (an editor's save)
    assert ring.verify(second) == second_entry["id"] and ring.enabled
    moved.rename(path)
    path.write_text('{"keys": []}')  # every key revoked: closed, never open
    assert ring.verify(second) is None and ring.enabled
    assert not KeyRing([], keys_file=path).enabled  # development, never any key: auth off
    required = KeyRing([], keys_file=path, required=True, recheck_seconds=0.0)
    assert required.enabled and required.verify(second) is None  # production: closed from start


def test_key_ring_rereads_at_most_every_recheck_interval(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key, entry = add_key(path)
    ring = KeyRing([], keys_file=path, recheck_seconds=3600.0)
    revoke_key(path, entry["id"])
    assert ring.verify(key) == entry["id"]  # not looked at again yet: no stat per request


def test_bearer_parsing() -> None:
    assert bearer_token(b"Bearer abc") == "abc"
    assert bearer_token(b"bearer  abc ") == "abc"
    assert bearer_token(b"Basic abc") is None
    assert bearer_token(b"Bearer ") is None
    assert bearer_token(None) is None


def test_in_process_limiter_window() -> None:
    now = [120.0]
    limiter = InProcessLimiter(clock=lambda: now[0])

    async def hits(n: int, bucket: str = "k") -> list[bool]:
        return [(await limiter.hit(bucket, 2)).allowed for _ in range(n)]

    assert asyncio.run(hits(3)) == [True, True, False]
    assert asyncio.run(hits(1, "other")) == [True]
    decision = asyncio.run(limiter.hit("k", 2))
    assert decision.retry_after == 60
    now[0] = 180.0  # next window
    assert asyncio.run(hits(1)) == [True]
