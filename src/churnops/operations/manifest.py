"""The manifest of a backup archive: what it holds, row counts, a sha256 per member.

Source URLs are recorded with their passwords replaced by `***`: an archive is often copied to
places a database password must not go.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

# Re-exported: the backup code and its tests import them from here.
from churnops.redact import REDACTED as REDACTED
from churnops.redact import redact_url as redact_url

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashingReader:
    """A read-only file wrapper that hashes what is read through it (one pass into the tar)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        return data


@dataclass
class DatabaseEntry:
    """One database in the archive."""

    url: str  # redacted
    dialect: str  # "sqlite" or "postgresql"
    member: str  # the archive member holding the copy
    tables: dict[str, int]  # rows per table at backup time
    schema: str | None = None  # PostgreSQL: the schema that was dumped


@dataclass
class ArtifactsEntry:
    path: str
    files: int
    bytes: int


@dataclass
class Manifest:
    churnops_version: str
    created_at: str
    store: DatabaseEntry
    mlflow: DatabaseEntry | None
    artifacts: ArtifactsEntry | None
    members: dict[str, str] = field(default_factory=dict)  # member name -> sha256
    format: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a manifest; ValueError names what is missing or malformed."""
        try:
            data: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"manifest is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ValueError(f"manifest format is not {FORMAT_VERSION}")
        try:
            return cls(
                churnops_version=str(data["churnops_version"]),
                created_at=str(data["created_at"]),
                store=DatabaseEntry(**data["store"]),
                mlflow=DatabaseEntry(**data["mlflow"]) if data.get("mlflow") else None,
                artifacts=ArtifactsEntry(**data["artifacts"]) if data.get("artifacts") else None,
                members={str(k): str(v) for k, v in dict(data["members"]).items()},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"manifest is incomplete: {exc}") from exc
