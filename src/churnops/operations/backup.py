"""`create_backup` and `restore_backup`: the prediction store, the MLflow tracking and registry
database and the artifacts folder in ONE dated tar.gz with a manifest.

An archive appears under its final name only when complete (temp name + rename), so a crash or a
full disk never leaves a truncated file that looks like a backup. A restore checks every member's
sha256 against the manifest and that every target is empty before it writes anything.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from churnops import __version__
from churnops.errors import ChurnopsError
from churnops.operations import databases
from churnops.operations.manifest import (
    MANIFEST_NAME,
    ArtifactsEntry,
    DatabaseEntry,
    HashingReader,
    Manifest,
    redact_url,
    sha256_file,
)

ARCHIVE_PREFIX = "churnops-backup-"
ARCHIVE_SUFFIX = ".tar.gz"
ARTIFACTS_DIR = "artifacts"
_ARCHIVE_NAME = re.compile(r"^churnops-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz$")

Step = Callable[[str], None]


class BackupError(ChurnopsError):
    """A backup could not be made, or an archive cannot be restored."""


@dataclass(frozen=True)
class BackupSources:
    """What to back up (or where to restore): database URLs and the artifacts folder."""

    store_url: str
    mlflow_url: str | None
    artifacts: Path | None


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    pruned: list[Path]


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    tables: dict[str, dict[str, int]]  # database label -> rows per table after the restore


def _no_step(_: str) -> None:
    return None


# -- backup --------------------------------------------------------------------------------------


def create_backup(
    sources: BackupSources,
    output: Path,
    *,
    keep: int | None = None,
    now: datetime | None = None,
    step: Step = _no_step,
) -> BackupResult:
    """Write `churnops-backup-<UTC time>.tar.gz` into `output`; with `keep`, delete all but the
    newest `keep` archives there afterwards."""
    if keep is not None and keep < 1:
        raise BackupError(f"--keep must be at least 1, got {keep}")
    created = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {output}: {exc}") from exc
    final = _free_name(output, created)
    with tempfile.TemporaryDirectory(prefix=".churnops-backup-", dir=output) as staging_dir:
        staging = Path(staging_dir)
        members: dict[str, str] = {}
        step("prediction store")
        store = _dump_database(sources.store_url, staging, "store", members)
        mlflow = None
        if sources.mlflow_url is not None:
            step("MLflow tracking and registry")
            mlflow = _dump_database(sources.mlflow_url, staging, "mlflow", members)
        partial = staging / (final.name + ".partial")
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            for name in members:
                tar.add(staging / name, arcname=name, recursive=False)
            artifacts = None
            if sources.artifacts is not None:
                step("artifacts")
                artifacts = _add_artifacts(tar, sources.artifacts, members)
            manifest = Manifest(
                churnops_version=__version__,
                created_at=created.isoformat().replace("+00:00", "Z"),
                store=store,
                mlflow=mlflow,
                artifacts=artifacts,
                members=members,
            )
            raw = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size, info.mtime, info.mode = len(raw), int(created.timestamp()), 0o600
            tar.addfile(info, _BytesReader(raw))
        step("writing the archive")
        _fsync(partial)
        partial.replace(final)
        _fsync(output)
    pruned = prune_backups(output, keep) if keep is not None else []
    return BackupResult(path=final, manifest=manifest, pruned=pruned)


def _free_name(output: Path, created: datetime) -> Path:
    stamp = created.strftime("%Y%m%dT%H%M%SZ")
    candidate = output / f"{ARCHIVE_PREFIX}{stamp}{ARCHIVE_SUFFIX}"
    serial = 1
    while candidate.exists():
        candidate = output / f"{ARCHIVE_PREFIX}{stamp}-{serial}{ARCHIVE_SUFFIX}"
        serial += 1
    return candidate


def _dump_database(url: str, staging: Path, stem: str, members: dict[str, str]) -> DatabaseEntry:
    dialect = databases.dialect_of(url)
    member = f"{stem}.sqlite" if dialect == "sqlite" else f"{stem}.pgdump"
    try:
        dumped = databases.dump(url, staging / member)
    except databases.DatabaseCopyError as exc:
        raise BackupError(f"backup of the {stem} database failed: {exc}") from exc
    members[member] = sha256_file(staging / member)
    return DatabaseEntry(
        url=redact_url(url),
        dialect=dumped.dialect,
        member=member,
        tables=dumped.tables,
        schema=dumped.schema,
    )


def _add_artifacts(tar: tarfile.TarFile, root: Path, members: dict[str, str]) -> ArtifactsEntry:
    files = 0
    size = 0
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            name = f"{ARTIFACTS_DIR}/{path.relative_to(root).as_posix()}"
            info = tar.gettarinfo(path, arcname=name)
            with path.open("rb") as handle:
                reader = HashingReader(handle)
                tar.addfile(info, reader)
            members[name] = reader.digest.hexdigest()
            files += 1
            size += info.size
    return ArtifactsEntry(path=str(root.resolve()), files=files, bytes=size)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        chunk = self._data[self._at : end]
        self._at += len(chunk)
        return chunk


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_backups(output: Path) -> list[Path]:
    """churnops archives in `output`, oldest first."""
    found: list[tuple[str, int, Path]] = []
    for path in output.glob(f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}"):
        match = _ARCHIVE_NAME.match(path.name)
        if match:
            found.append((match.group(1), int(match.group(2) or 0), path))
    return [path for *_, path in sorted(found)]


def prune_backups(output: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` archives in `output`; returns what was deleted."""
    if keep < 1:
        raise BackupError(f"--keep must be at least 1, got {keep}")
    archives = list_backups(output)
    doomed = archives[: max(0, len(archives) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


# -- restore -------------------------------------------------------------------------------------


def read_archive(archive: Path, into: Path) -> Manifest:
    """Unpack `archive` into `into` and check it: the manifest parses, the members are exactly
    the ones it lists and every sha256 matches. Raises BackupError otherwise."""
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")  # refuses absolute paths, '..' and device files
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(f"{archive} is not a readable backup archive: {exc}") from exc
    manifest_path = into / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BackupError(f"{archive} has no {MANIFEST_NAME}: not a churnops backup")
    try:
        manifest = Manifest.from_json(manifest_path.read_bytes())
    except ValueError as exc:
        raise BackupError(f"{archive}: {exc}") from exc
    present = {
        path.relative_to(into).as_posix()
        for path in into.rglob("*")
        if path.is_file() and path != manifest_path
    }
    listed = set(manifest.members)
    if present != listed:
        odd = sorted(present ^ listed)[:3]
        raise BackupError(f"{archive} does not match its manifest (members {', '.join(odd)})")
    for name, expected in sorted(manifest.members.items()):
        if sha256_file(into / name) != expected:
            raise BackupError(f"{archive} is corrupted: checksum mismatch for {name}")
    return manifest


def restore_backup(
    archive: Path, targets: BackupSources, *, step: Step = _no_step
) -> RestoreResult:
    """Restore `archive` into empty targets. Nothing is written unless the archive verifies and
    every target is empty."""
    with tempfile.TemporaryDirectory(prefix="churnops-restore-") as unpack_dir:
        unpacked = Path(unpack_dir)
        step("verifying the archive")
        manifest = read_archive(archive, unpacked)
        plan = _restore_plan(manifest, targets)
        step("checking the targets are empty")
        for label, url, entry in plan:
            try:
                reason = databases.target_problem(url, dialect=entry.dialect, schema=entry.schema)
            except databases.DatabaseCopyError as exc:
                raise BackupError(f"{label} target: {exc}") from exc
            if reason is not None:
                raise BackupError(f"refusing to restore the {label}: {reason}")
        artifacts = targets.artifacts if manifest.artifacts is not None else None
        if artifacts is not None and artifacts.exists() and any(artifacts.iterdir()):
            raise BackupError(f"refusing to restore artifacts: {artifacts} is not empty")
        tables: dict[str, dict[str, int]] = {}
        for label, url, entry in plan:
            step(f"restoring the {label}")
            try:
                databases.restore(
                    url, unpacked / entry.member, dialect=entry.dialect, schema=entry.schema
                )
                tables[label] = databases.table_counts(url, schema=entry.schema)
            except databases.DatabaseCopyError as exc:
                raise BackupError(f"restore of the {label} failed: {exc}") from exc
            if tables[label] != entry.tables:
                raise BackupError(
                    f"the restored {label} does not hold the rows the manifest lists: "
                    f"{tables[label]} != {entry.tables}"
                )
        if artifacts is not None:
            step("restoring artifacts")
            source = unpacked / ARTIFACTS_DIR
            artifacts.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, artifacts, dirs_exist_ok=True)
    return RestoreResult(manifest=manifest, tables=tables)


def _restore_plan(
    manifest: Manifest, targets: BackupSources
) -> list[tuple[str, str, DatabaseEntry]]:
    plan = [("prediction store", targets.store_url, manifest.store)]
    if manifest.mlflow is not None:
        if targets.mlflow_url is None:
            raise BackupError(
                "the archive holds an MLflow database: say where it goes (--mlflow-db URL)"
            )
        plan.append(("MLflow database", targets.mlflow_url, manifest.mlflow))
    return plan
