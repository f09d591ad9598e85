"""A local, verified copy of the registered model versions a consumer has loaded.

Keyed by the registry (without credentials) and the version's identity (`VersionRecord.key`:
name, version, source, run id, creation time), so a cached entry is only ever used for the very
version the registry names now; which version that is, is read from the registry at every load
(`registry_lookup`). Each entry holds the few files the loader reads and a manifest with their
SHA-256, checked before use: a torn or altered copy is never loaded (it is downloaded again).
Entries are written under a temporary name and renamed into place, so concurrent workers that
miss together each see a whole entry. The folder is private to its owner (0700) and refused
otherwise: what it holds is unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from churnops.modeling.registry_lookup import VersionRecord, redact

logger = logging.getLogger(__name__)

MANIFEST = "churnops-cache.json"
FORMAT = 1


class CacheUnusableError(OSError):
    """The cache folder cannot be used safely (not ours, or writable by others)."""


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_private(folder: Path) -> None:
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheUnusableError(
            f"model cache {folder} must be owned by this user and writable by no one else"
        )


class ModelCache:
    """Entries under `root`, one folder per registered version."""

    def __init__(self, root: Path, *, salt: str = "") -> None:
        self.root = root
        self.salt = salt  # what else the entries depend on (the code that reads them)

    def key(self, record: VersionRecord, registry_uri: str) -> str:
        return hashlib.sha256(f"{record.key(registry_uri)}:{self.salt}".encode()).hexdigest()

    def entry(self, record: VersionRecord, registry_uri: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", record.name)[:80]
        return self.root / f"{safe}-v{record.version}-{self.key(record, registry_uri)[:24]}"

    def get(self, record: VersionRecord, registry_uri: str) -> Path | None:
        """The verified entry of this version, or None (absent, or not what was written)."""
        entry = self.entry(record, registry_uri)
        manifest_path = entry / MANIFEST
        try:
            _check_private(self.root)
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("model cache entry %s unusable: %s", entry, exc)
            return None
        expected = {"format": FORMAT, "key": self.key(record, registry_uri)}
        if any(manifest.get(name) != value for name, value in expected.items()):
            return None
        for relative, digest in manifest.get("files", {}).items():
            path = entry / relative
            if not path.is_file() or _digest(path) != digest:
                logger.warning("model cache entry %s does not match its manifest", entry)
                return None
        return entry

    def put(self, record: VersionRecord, registry_uri: str, source: Path, files: list[str]) -> Path:
        """Copy `files` (relative to `source`) into a new entry and return it."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(self.root)
        entry = self.entry(record, registry_uri)
        incoming = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
        try:
            digests = {}
            for relative in files:
                target = incoming / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / relative, target)
                digests[relative] = _digest(target)
            manifest = {
                "format": FORMAT,
                "key": self.key(record, registry_uri),
                "registry": redact(registry_uri),
                "model": record.uri,
                "source": record.source,
                "run_id": record.run_id,
                "created_ms": record.created_ms,
                "files": digests,
            }
            (incoming / MANIFEST).write_text(json.dumps(manifest, indent=1))
            try:
                incoming.rename(entry)
            except OSError:  # another process put it first (or a broken entry is in the way)
                if self.get(record, registry_uri) is not None:
                    return entry
                shutil.rmtree(entry, ignore_errors=True)
                incoming.rename(entry)
            return entry
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(incoming)
