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
    configured_hashes,
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
    hashes = configured_hashes(["sha256$00$" + "0" * 64], str(path))
    assert len(hashes) == 2 and KeyRing(hashes).verify(key) == entry["id"]
    assert revoke_key(path, entry["id"]) and not revoke_key(path, entry["id"])
    assert json.loads(path.read_text()) == {"keys": []}


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
