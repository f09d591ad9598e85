"""Operations on a running installation: backup and restore (beside `store/`, below the CLI).

`backup.create_backup` / `backup.restore_backup` put the prediction store, the MLflow tracking and
registry database and the artifacts folder into one verified archive and back; `databases` knows
how to copy SQLite and PostgreSQL; `manifest` describes an archive and redacts what it records.
"""

from churnops.operations.backup import (
    BackupError,
    BackupResult,
    BackupSources,
    RestoreResult,
    create_backup,
    prune_backups,
    restore_backup,
)

__all__ = [
    "BackupError",
    "BackupResult",
    "BackupSources",
    "RestoreResult",
    "create_backup",
    "prune_backups",
    "restore_backup",
]
