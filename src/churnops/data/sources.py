"""Decide which table a run reads and which column settings apply to it.

Naming a table (file or `SQLAlchemy URL#table`) needs no pandas: entry points check their inputs
here before the heavy libraries are imported.
"""

from __future__ import annotations

from pathlib import Path

from churnops.datasets import demo_data_settings, demo_path, demo_validation_settings
from churnops.errors import DataLoadError
from churnops.settings import DataSettings, ValidationSettings

SQL_PREFIXES = ("sqlite:", "postgresql:", "postgresql+", "mysql:", "mysql+", "mssql", "oracle")
# File suffix -> reader kind (data/ingest.py has one reader per kind).
READERS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def is_sql_url(source: str) -> bool:
    return source.startswith(SQL_PREFIXES)


def split_sql_source(source: str) -> tuple[str, str]:
    """`URL#table_or_query` -> (url, table or query). The part after `#` is required."""
    url, sep, what = source.partition("#")
    if not sep or not what.strip():
        raise DataLoadError(
            f"SQL source {url!r} needs a table or query after '#', e.g. {url}#customers"
        )
    return url, what.strip()


def reader_kind(source: str | Path, *, flag: str | None = None) -> str:
    """'sql' or the file format of an input; DataLoadError when missing or of an unknown type."""
    text = str(source)
    if is_sql_url(text):
        split_sql_source(text)
        return "sql"
    path = Path(text)
    if not path.exists():
        raise DataLoadError(
            f"{flag} file not found: {path}" if flag else f"input not found: {path}"
        )
    if path.is_dir():
        raise DataLoadError(f"{path} is a folder, not a table file")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataLoadError(
            f"unsupported input type {path.suffix!r} for {path}; use .csv, .tsv, .parquet, "
            ".xlsx, .jsonl or a SQLAlchemy URL#table"
        )
    return kind


def _same_source(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def resolve_data_settings(
    configured: DataSettings,
    *,
    path: str | None = None,
    target: str | None = None,
    positive_label: str | None = None,
    id_column: str | None = None,
    exclude: list[str] | None = None,
) -> DataSettings:
    """Column settings for this run.

    Configured column settings describe the configured table only: a `path` naming another table
    starts from empty settings, so one table's id or exclusions never leak into another's run.
    With no table anywhere, the bundled demo table and its own sidecar settings are used.
    """
    if path is not None and not _same_source(path, configured.path):
        base = DataSettings(path=path, max_null_rate=configured.max_null_rate)
    elif configured.path is None and configured.target is None:
        base = demo_data_settings()
        base.max_null_rate = configured.max_null_rate
    else:
        base = configured.model_copy(deep=True)
        if base.path is None:
            base.path = str(demo_data_settings().path)
    updates: dict[str, object] = {}
    if target is not None:
        updates["target"] = target
        if positive_label is None and target != base.target:
            updates["positive_label"] = None
    if positive_label is not None:
        updates["positive_label"] = positive_label
    if id_column is not None:
        updates["id_column"] = id_column or None
    if exclude is not None:
        updates["exclude"] = exclude
    return base.model_copy(update=updates)


def resolve_validation_settings(
    configured: ValidationSettings, data: DataSettings
) -> ValidationSettings:
    """Validation settings for this run's table: the configured ones, except that a run on the
    bundled demo table with no column-level validation settings takes the table's own."""
    if configured.has_columns() or not _same_source(data.path, str(demo_path())):
        return configured
    return demo_validation_settings(configured)
