"""Archive naming, pruning, manifest parsing and the checks a restore makes before writing."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from churnops.operations import BackupError, prune_backups
from churnops.operations.backup import list_backups, read_archive
from churnops.operations.manifest import (
    MANIFEST_NAME,
    DatabaseEntry,
    Manifest,
    redact_url,
    sha256_file,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://churnops:s3cret@db:5432/predictions",
            "postgresql+psycopg://churnops:***@db:5432/predictions",
        ),
        ("http://admin:hunter2@mlflow:5000", "http://admin:***@mlflow:5000"),
        (
            "postgresql://u@h/db?password=s3cret&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("sqlite:////var/lib/churnops/mlflow.db", "sqlite:////var/lib/churnops/mlflow.db"),
    ],
)
def test_redact_url_hides_passwords_only(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_backups_are_listed_and_pruned_oldest_first(tmp_path: Path) -> None:
    names = [
        "churnops-backup-20260101T000000Z.tar.gz",
        "churnops-backup-20260101T000000Z-1.tar.gz",  # same second, made after the first
        "churnops-backup-20260102T000000Z.tar.gz",
        "churnops-backup-20251231T235959Z.tar.gz",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an archive")
    assert [p.name for p in list_backups(tmp_path)] == [names[3], names[0], names[1], names[2]]
    removed = prune_backups(tmp_path, 2)
    assert [p.name for p in removed] == [names[3], names[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[1], names[2], "notes.txt"])
    with pytest.raises(BackupError, match="at least 1"):
        prune_backups(tmp_path, 0)


def _manifest(members: dict[str, str]) -> Manifest:
    store = DatabaseEntry(url="sqlite:///x", dialect="sqlite", member="store.sqlite", tables={})
    return Manifest("0.1.0", "2026-01-01T00:00:00Z", store, None, None, members)


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_manifest_round_trips_and_rejects_incomplete_json() -> None:
    manifest = _manifest({"store.sqlite": "ab" * 32})
    assert Manifest.from_json(manifest.to_json()) == manifest
    with pytest.raises(ValueError, match="not JSON"):
        Manifest.from_json(b"{")
    with pytest.raises(ValueError, match="incomplete"):
        Manifest.from_json(b'{"format": 1, "created_at": "x"}')
    with pytest.raises(ValueError, match="format"):
        Manifest.from_json(b'{"format": 99}')


def test_read_archive_checks_members_against_the_manifest(tmp_path: Path) -> None:
    data = b"SQLite format 3\x00" + b"\x00" * 100
    (tmp_path / "s").write_bytes(data)
    good = _manifest({"store.sqlite": sha256_file(tmp_path / "s")}).to_json()
    ok = _archive(tmp_path / "ok.tar.gz", {"store.sqlite": data, MANIFEST_NAME: good})
    assert read_archive(ok, tmp_path / "u1").members == {
        "store.sqlite": sha256_file(tmp_path / "s")
    }

    extra = _archive(
        tmp_path / "extra.tar.gz", {"store.sqlite": data, "evil.sh": b"rm", MANIFEST_NAME: good}
    )
    with pytest.raises(BackupError, match="does not match its manifest"):
        read_archive(extra, tmp_path / "u2")
    missing = _archive(tmp_path / "missing.tar.gz", {"store.sqlite": data})
    with pytest.raises(BackupError, match=r"has no manifest\.json"):
        read_archive(missing, tmp_path / "u3")
    escaping = _archive(tmp_path / "escape.tar.gz", {"../outside.txt": b"x", MANIFEST_NAME: good})
    with pytest.raises(BackupError, match="not a readable backup archive"):
        read_archive(escaping, tmp_path / "u4" / "inner")
    assert not (tmp_path / "u4" / "outside.txt").exists()
    with pytest.raises(BackupError, match="does not exist"):
        read_archive(tmp_path / "nope.tar.gz", tmp_path / "u5")
