"""`churnops backup` and `churnops restore`: thin wrappers over `churnops.operations.backup`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

import typer

from churnops.cli.console import RichReporter, cli_errors, err_console
from churnops.cli.options import ConfigOption
from churnops.errors import ConfigError
from churnops.settings import Settings, get_settings

if TYPE_CHECKING:  # the operations package pulls in SQLAlchemy and psycopg: only when used
    from churnops.operations import BackupSources

MlflowDbOption = typer.Option(
    None,
    "--mlflow-db",
    help="MLflow backend database URL (default: the tracking URI when it is SQLite/PostgreSQL; "
    "required when tracking goes through an MLflow server).",
)
ArtifactsOption = typer.Option(
    None,
    "--artifacts",
    help="MLflow artifacts folder (default: <home>/mlruns with the local SQLite tracking store).",
)


def _targets(settings: Settings, mlflow_db: str | None, artifacts: Path | None) -> BackupSources:
    from churnops.operations import BackupSources

    mlflow_url = mlflow_db or settings.resolved_tracking_uri()
    scheme = urlsplit(mlflow_url).scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql"):
        from churnops.operations.manifest import redact_url

        raise ConfigError(
            f"MLflow tracking goes through {redact_url(mlflow_url)}: pass --mlflow-db with the "
            "URL of its backend database (and --artifacts with its artifacts folder)"
        )
    if artifacts is None:
        location = settings.artifact_location() if mlflow_db is None else None
        if location is not None and location.startswith("file:"):
            artifacts = Path(url2pathname(urlsplit(location).path))
    return BackupSources(
        store_url=settings.resolved_database_url(), mlflow_url=mlflow_url, artifacts=artifacts
    )


def backup_command(
    output: Path = typer.Option(
        Path("backups"), "--output", "-o", help="Folder the dated archive goes into."
    ),
    keep: int | None = typer.Option(
        None, "--keep", min=1, help="Afterwards keep only the newest N archives in --output."
    ),
    mlflow_db: str | None = MlflowDbOption,
    artifacts: Path | None = ArtifactsOption,
    config: Path | None = ConfigOption,
) -> None:
    """Back up the prediction store, the MLflow registry/tracking database and the artifacts
    into one dated archive (tar.gz with a manifest); prints the archive's path on stdout."""
    from churnops.operations import create_backup

    with cli_errors():
        sources = _targets(get_settings(config), mlflow_db, artifacts)
        if sources.artifacts is None:
            err_console.print("[yellow]note:[/] no artifacts folder known; pass --artifacts DIR")
        with RichReporter() as reporter:
            result = create_backup(sources, output, keep=keep, step=reporter.stage)
        manifest = result.manifest
        store = ", ".join(
            f"{table} {rows}"
            for table, rows in manifest.store.tables.items()
            if table != "alembic_version"
        )
        mlflow = manifest.mlflow.tables if manifest.mlflow else {}
        files = manifest.artifacts.files if manifest.artifacts else 0
        err_console.print(
            f"backed up the store ({store}), MLflow ({mlflow.get('runs', 0)} run(s), "
            f"{mlflow.get('model_versions', 0)} model version(s)) and {files} artifact file(s)"
            + (f"; removed {len(result.pruned)} older archive(s)" if result.pruned else "")
        )
        typer.echo(str(result.path))


def restore_command(
    archive: Path = typer.Argument(..., help="An archive written by `churnops backup`."),
    mlflow_db: str | None = MlflowDbOption,
    artifacts: Path | None = ArtifactsOption,
    config: Path | None = ConfigOption,
) -> None:
    """Restore an archive into EMPTY databases (checksums are verified before anything is
    written; a target that holds data is refused)."""
    from churnops.operations import restore_backup

    with cli_errors():
        targets = _targets(get_settings(config), mlflow_db, artifacts)
        with RichReporter() as reporter:
            result = restore_backup(archive, targets, step=reporter.stage)
        counts = ", ".join(
            f"{label}: {sum(tables.values())} row(s)" for label, tables in result.tables.items()
        )
        err_console.print(f"restored {archive.name} ({result.manifest.created_at}): {counts}")
