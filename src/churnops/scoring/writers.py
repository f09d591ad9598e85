"""Atomic chunked writers: output goes to a temporary name and appears under its own name at commit.

A run that fails or is interrupted calls `abort()` (or never commits), so the output name never
holds a partial file: either the previous file is still there untouched or the complete new one is.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from churnops.data.sources import split_sql_source
from churnops.errors import ChurnopsError, ConfigError, DataLoadError
from churnops.scoring.destinations import output_kind, temporary_path

logger = logging.getLogger(__name__)


class ChunkWriter(Protocol):
    """Receives frames with identical columns; nothing is visible until `commit()`."""

    description: str

    def write(self, frame: pd.DataFrame) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


@dataclass
class _AtomicFile:
    path: Path
    description: str = field(init=False)
    temp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.parent and not self.path.parent.is_dir():
            raise ConfigError(f"output folder does not exist: {self.path.parent}")
        if self.path.is_dir():
            raise ConfigError(f"output {self.path} is a folder; give a file name")
        self.temp = temporary_path(self.path)
        self.description = str(self.path)

    @contextmanager
    def _io(self) -> Iterator[None]:
        """A failed write (no space, no permission, a vanished folder) is one readable error."""
        try:
            yield
        except OSError as exc:
            raise ChurnopsError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _close(self) -> None:
        """Flush and close the temporary file (subclasses)."""

    def commit(self) -> None:
        with self._io():
            self._close()
            if not self.temp.exists():  # nothing was written: an empty result still gets its file
                self._write_empty()
                self._close()
            self.temp.replace(self.path)

    def _write_empty(self) -> None:
        self.temp.touch()

    def abort(self) -> None:
        """Remove the temporary file; never raises (the run's own error is the one to report)."""
        try:
            self._close()
        except OSError as exc:
            logger.debug("closing %s: %s", self.temp, exc)
        try:
            self.temp.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not remove the temporary file %s: %s", self.temp, exc)


@dataclass
class CsvWriter(_AtomicFile):
    """CSV with a header line, appended chunk by chunk."""

    _handle: Any = field(init=False, default=None)

    def write(self, frame: pd.DataFrame) -> None:
        first = self._handle is None
        with self._io():
            if first:
                self._handle = self.temp.open("w", newline="", encoding="utf-8")
            frame.to_csv(self._handle, header=first, index=False)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class JsonLinesWriter(_AtomicFile):
    """One JSON object per line; timestamps as ISO 8601 text."""

    _handle: Any = field(init=False, default=None)

    def write(self, frame: pd.DataFrame) -> None:
        with self._io():
            if self._handle is None:
                self._handle = self.temp.open("w", encoding="utf-8")
            if frame.empty:
                return
            text = frame.to_json(orient="records", lines=True, date_format="iso", date_unit="us")
            self._handle.write(text if text.endswith("\n") else text + "\n")

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class ParquetWriter(_AtomicFile):
    """Parquet row groups through pyarrow; every chunk is cast to the first chunk's schema."""

    compression: str = "snappy"
    _writer: Any = field(init=False, default=None)
    _schema: Any = field(init=False, default=None)

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = _promote_nulls(table.schema)
            with self._io():
                self._writer = pq.ParquetWriter(
                    self.temp,
                    self._schema,
                    compression=self.compression,
                    use_dictionary=_dictionary_columns(table),
                )
        if not table.schema.equals(self._schema, check_metadata=False):
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataLoadError(
                    f"a column changed type between chunks and cannot be written to Parquet: {exc}"
                ) from exc
        with self._io():
            self._writer.write_table(table)

    def _write_empty(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({}), self.temp)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _dictionary_columns(table: Any) -> list[str]:
    """Columns worth dictionary encoding, judged on the first chunk: categoricals, flags, and
    columns with few distinct values. Ids and probabilities (all distinct) would only pay for a
    dictionary Parquet abandons page after page (half the write time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def few_values(column: Any) -> bool:
        kind = column.type
        if pa.types.is_dictionary(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
            return True
        return bool(pc.count_distinct(column).as_py() <= max(len(column) // 10, 16))

    return [
        name
        for name, column in zip(table.column_names, table.columns, strict=True)
        if few_values(column)
    ]


def _promote_nulls(schema: Any) -> Any:
    """A column all-null in the first chunk is written as text (later chunks may fill it)."""
    import pyarrow as pa

    fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    return pa.schema(fields)


@dataclass
class SqlTableWriter:
    """Rows go to a staging table; commit swaps it in for the target table in one transaction."""

    url: str
    table: str
    description: str = field(init=False)
    _engine: Any = field(init=False, default=None)
    _staging: str = field(init=False)
    _created: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        import sqlalchemy as sa

        if not self.table.replace("_", "").isalnum():
            raise ConfigError(f"output table name must be letters, digits and '_': {self.table!r}")
        try:
            self._engine = sa.create_engine(self.url)
        except Exception as exc:
            raise DataLoadError(f"cannot open output database: {exc}") from exc
        self._staging = f"{self.table}__staging_{uuid.uuid4().hex[:8]}"
        self.description = f"table {self.table}"

    def write(self, frame: pd.DataFrame) -> None:
        out = frame.copy()
        for name in out.columns:
            if isinstance(out[name].dtype, pd.CategoricalDtype):
                out[name] = out[name].astype(object)
        with self._engine.begin() as conn:
            out.to_sql(self._staging, conn, if_exists="append", index=False, chunksize=10_000)
        self._created = True

    def commit(self) -> None:
        import sqlalchemy as sa

        if not self._created:
            raise DataLoadError("no rows were scored, so no output table was written")
        preparer = self._engine.dialect.identifier_preparer
        target, staging = preparer.quote(self.table), preparer.quote(self._staging)
        with self._engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {target}"))
            conn.execute(sa.text(f"ALTER TABLE {staging} RENAME TO {target}"))
        self._engine.dispose()

    def abort(self) -> None:
        import sqlalchemy as sa

        try:
            if self._created:
                staging = self._engine.dialect.identifier_preparer.quote(self._staging)
                with self._engine.begin() as conn:
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {staging}"))
        finally:
            self._engine.dispose()


def open_writer(destination: str | Path) -> ChunkWriter:
    """An atomic writer for a file (format from its extension) or `SQLAlchemy URL#table`."""
    text = str(destination)
    kind = output_kind(text)
    if kind == "sql":
        url, table = split_sql_source(text)
        return SqlTableWriter(url, table)
    path = Path(text)
    if kind == "csv":
        return CsvWriter(path)
    if kind == "parquet":
        return ParquetWriter(path)
    return JsonLinesWriter(path)
