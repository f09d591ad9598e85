"""API keys: only salted hashes are stored; a presented key is checked in constant time.

Keys are 256-bit random tokens, so a fast salted SHA-256 is enough (there is nothing to brute
force) and keeps the check to about a microsecond per configured key on the hot path.
Hash format: `sha256$<salt hex>$<digest hex>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnops.errors import ConfigError

logger = logging.getLogger(__name__)

KEY_PREFIX = "cho_"
HASH_SCHEME = "sha256"


def generate_key() -> str:
    """A new random API key (shown to the user once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, *, salt: bytes | None = None) -> str:
    """The salted hash to store for `key`."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + key.encode("utf-8")).hexdigest()
    return f"{HASH_SCHEME}${salt.hex()}${digest}"


@dataclass(frozen=True)
class StoredKey:
    """One configured key: its id (for rate limits and logs) and parsed hash."""

    key_id: str
    salt: bytes
    digest: bytes


def parse_hash(text: str) -> StoredKey:
    """Parse `sha256$salt$digest`; ConfigError when malformed."""
    parts = text.strip().split("$")
    if len(parts) != 3 or parts[0] != HASH_SCHEME:
        raise ConfigError(
            f"API key hash must look like 'sha256$<salt>$<digest>', got {text[:20]!r}"
        )
    try:
        salt, digest = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError as exc:
        raise ConfigError(f"API key hash is not hex: {exc}") from exc
    if len(digest) != 32:
        raise ConfigError("API key hash digest must be 32 bytes")
    return StoredKey(key_id=parts[2][:12], salt=salt, digest=digest)


class KeyRing:
    """The set of accepted keys; `verify` returns the key id or None, in constant time per key.

    Keys come from settings (fixed) and from the keys file, which is re-read when it changes
    (checked at most every `recheck_seconds`): a key revoked with `churnops keys revoke` stops
    working within a second, without a restart. It fails closed: a file that vanished or cannot
    be read keeps the previous keys (and says so in the log), and once authentication is on it
    stays on, so revoking every key refuses everyone rather than opening the API. `required`
    (production) turns it on even before the first key exists.
    """

    def __init__(
        self,
        hashes: list[str],
        *,
        keys_file: str | Path | None = None,
        required: bool = False,
        recheck_seconds: float = 1.0,
    ) -> None:
        self._fixed = list(hashes)
        self.keys_file = Path(keys_file) if keys_file else None
        self.required = required
        self.recheck_seconds = recheck_seconds
        self._stamp = self._file_stamp()
        self.keys = self._load()
        self._ever_enabled = bool(self.keys)
        self._cache: dict[str, str] = {}  # presented key -> id, bounded: only valid keys enter
        self._next_check = time.monotonic() + recheck_seconds

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self.keys_file is None:
            return None
        try:
            found = self.keys_file.stat()
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _load(self) -> list[StoredKey]:
        hashes = self._fixed + (
            [str(entry["hash"]) for entry in read_keys_file(self.keys_file)]
            if self.keys_file
            else []
        )
        return [parse_hash(h) for h in hashes]

    def _refresh(self) -> None:
        """Re-read the keys file if it changed since the last look (at most once a second)."""
        if self.keys_file is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.recheck_seconds
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:  # moved away, or mid-replace by an editor: not a revocation
            logger.warning("API keys file %s is gone; keeping the keys loaded", self.keys_file)
            return
        try:
            keys = self._load()
        except ConfigError as exc:
            logger.error("API keys file changed but cannot be used, keeping the old keys: %s", exc)
            return
        self.keys, self._cache = keys, {}
        self._ever_enabled = self._ever_enabled or bool(keys)
        logger.info("API keys reloaded from %s: %d key(s)", self.keys_file, len(keys))

    @property
    def enabled(self) -> bool:
        self._refresh()
        return self.required or self._ever_enabled

    def verify(self, presented: str) -> str | None:
        self._refresh()
        cached = self._cache.get(presented)
        if cached is not None:
            return cached
        encoded = presented.encode("utf-8")
        found: str | None = None
        for key in self.keys:  # check all, so timing does not tell which key matched
            digest = hashlib.sha256(key.salt + encoded).digest()
            if hmac.compare_digest(digest, key.digest):
                found = key.key_id
        if found is not None and len(self._cache) < 1024:
            self._cache[presented] = found
        return found


def read_keys_file(path: str | Path) -> list[dict[str, Any]]:
    """Entries of the keys file (`{"keys": [{"id", "hash", "name", "created_at"}]}`)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read API keys file {path}: {exc}") from exc
    entries = data.get("keys", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"API keys file {path} must hold {{'keys': [...]}}")
    return [e for e in entries if isinstance(e, dict) and "hash" in e]


def add_key(keys_file: str | Path, *, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """Create a key, append its hash to the keys file (mode 0600), return (key, entry)."""
    path = Path(keys_file)
    entries = read_keys_file(path)
    key = generate_key()
    hashed = hash_key(key)
    entry = {
        "id": parse_hash(hashed).key_id,
        "name": name,
        "hash": hashed,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    entries.append(entry)
    _write_keys_file(path, entries)
    return key, entry


def _write_keys_file(path: Path, entries: list[dict[str, Any]]) -> None:
    """Atomic rewrite, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"keys": entries}, fh, indent=2)
    tmp.replace(path)


def revoke_key(keys_file: str | Path, key_id: str) -> bool:
    """Remove the key with `key_id` from the keys file; False when there is none."""
    path = Path(keys_file)
    entries = read_keys_file(path)
    kept = [e for e in entries if e.get("id") != key_id]
    if len(kept) == len(entries):
        return False
    _write_keys_file(path, kept)
    return True


def bearer_token(header: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if not header:
        return None
    try:
        text = header.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        return None
    scheme, _, token = text.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
