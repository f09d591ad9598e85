"""Read a customer table (CSV/TSV, XLSX, Parquet, JSON lines or SQL): the one reader family.

Every reader streams a table as DataFrames of bounded size (batch scoring, monitoring) and knows its
column names before the first chunk (missing required columns fail up front) and, where the format
stores it cheaply, the total row count. Reading a whole table (training, EDA) is the same reader with
`chunk_rows=None`: one chunk, parsed exactly as pandas parses the whole file. A new format is one
reader class here and one line in `data/sources.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from churnops.data.sources import reader_kind, split_sql_source
from churnops.errors import DataLoadError

DEFAULT_CHUNK_ROWS = 250_000


WHOLE = None  # chunk_rows for "the whole table as one frame"


class ChunkReader(Protocol):
    """A table read in chunks; `columns` is known before iterating."""

    columns: list[str]
    total_rows: int | None
    description: str

    def chunks(self) -> Iterator[pd.DataFrame]: ...


def _rechunk(frames: Iterator[pd.DataFrame], size: int) -> Iterator[pd.DataFrame]:
    """Frames of exactly `size` rows (the last may be shorter) from frames of any size."""
    pending: list[pd.DataFrame] = []
    held = 0
    for frame in frames:
        pending.append(frame)
        held += len(frame)
        while held >= size:
            merged = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            yield merged.iloc[:size].reset_index(drop=True)
            rest = merged.iloc[size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        merged = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        yield merged.reset_index(drop=True)


@dataclass
class ParquetReader:
    """Parquet through pyarrow row batches; text columns come as pandas categoricals (cheap)."""

    path: Path
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    only: list[str] | None = None  # columns to read (None: all)
    categorical: list[str] | None = None  # text columns to read as categoricals (None: all)
    columns: list[str] = field(init=False)
    total_rows: int | None = field(init=False)
    description: str = field(init=False)

    def __post_init__(self) -> None:
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(self.path)
        except Exception as exc:
            raise DataLoadError(f"cannot read {self.path}: {exc}") from exc
        self.columns = list(meta.schema_arrow.names)
        self.total_rows = meta.metadata.num_rows
        self.description = str(self.path)

    def chunks(self) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = [c for c in self.columns if self.only is None or c in self.only]
        schema = pq.ParquetFile(self.path).schema_arrow
        strings = [
            name
            for name in wanted
            if (
                pa.types.is_string(schema.field(name).type)
                or pa.types.is_large_string(schema.field(name).type)
            )
            and (self.categorical is None or name in self.categorical)
        ]
        # No pre-buffering: it keeps whole column chunks cached per row group and makes memory
        # creep with the file size (it pays off on object stores, not on local files).
        file = pq.ParquetFile(self.path, read_dictionary=strings, pre_buffer=False)
        if self.chunk_rows is None:
            yield file.read(columns=wanted).to_pandas(self_destruct=True)
            return
        batches = file.iter_batches(batch_size=self.chunk_rows, columns=wanted)
        frames = (pa.Table.from_batches([b]).to_pandas(self_destruct=True) for b in batches)
        yield from _rechunk(frames, self.chunk_rows)


@dataclass
class CsvReader:
    """CSV (or TSV) through pandas' C parser in chunks."""

    path: Path
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    sep: str = ","
    columns: list[str] = field(init=False)
    total_rows: int | None = field(init=False, default=None)
    description: str = field(init=False)

    def __post_init__(self) -> None:
        try:
            header = pd.read_csv(self.path, sep=self.sep, nrows=0)
        except Exception as exc:
            raise DataLoadError(f"cannot read {self.path}: {exc}") from exc
        self.columns = [str(c) for c in header.columns]
        self.description = str(self.path)

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.chunk_rows is None:
            yield pd.read_csv(self.path, sep=self.sep)
            return
        with pd.read_csv(self.path, sep=self.sep, chunksize=self.chunk_rows) as reader:
            for frame in reader:
                yield frame.reset_index(drop=True)


@dataclass
class JsonLinesReader:
    """JSON lines in chunks; the columns are those of the first record."""

    path: Path
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    columns: list[str] = field(init=False)
    total_rows: int | None = field(init=False, default=None)
    description: str = field(init=False)

    def __post_init__(self) -> None:
        import json

        try:
            with self.path.open() as handle:
                first = next((line for line in handle if line.strip()), None)
            self.columns = list(json.loads(first)) if first is not None else []
        except Exception as exc:
            raise DataLoadError(f"cannot read {self.path}: {exc}") from exc
        self.description = str(self.path)

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.chunk_rows is None:
            yield pd.read_json(self.path, lines=True)
            return
        with pd.read_json(self.path, lines=True, chunksize=self.chunk_rows) as reader:
            for frame in reader:
                yield frame.reset_index(drop=True)


@dataclass
class ExcelReader:
    """The first sheet of an XLSX workbook, streamed row by row with openpyxl's read-only mode."""

    path: Path
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    columns: list[str] = field(init=False)
    total_rows: int | None = field(init=False, default=None)
    description: str = field(init=False)

    def __post_init__(self) -> None:
        from openpyxl import load_workbook

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:
            raise DataLoadError(f"cannot read {self.path}: {exc}") from exc
        try:
            sheet = book.worksheets[0]
            header = next(sheet.iter_rows(max_row=1, values_only=True), ())
            self.columns = [str(c) for c in header if c is not None]
            if sheet.max_row is not None:
                self.total_rows = max(sheet.max_row - 1, 0)
        finally:
            book.close()
        self.description = str(self.path)

    def chunks(self) -> Iterator[pd.DataFrame]:
        from openpyxl import load_workbook

        book = load_workbook(self.path, read_only=True, data_only=True)
        try:
            rows = book.worksheets[0].iter_rows(min_row=2, values_only=True)
            width = len(self.columns)
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                if all(v is None for v in row):
                    continue
                batch.append(tuple(row[:width]))
                if self.chunk_rows is not None and len(batch) >= self.chunk_rows:
                    yield self._frame(batch)
                    batch = []
            if batch:
                yield self._frame(batch)
        finally:
            book.close()

    def _frame(self, batch: list[tuple[Any, ...]]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(batch, columns=self.columns)
        # Excel cells are typed one by one: let pandas pick one dtype per column as read_excel does.
        return frame.infer_objects()


@dataclass
class SqlReader:
    """A table or query through SQLAlchemy with a server-side cursor (stream_results)."""

    url: str
    what: str
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    columns: list[str] = field(init=False)
    total_rows: int | None = field(init=False, default=None)
    description: str = field(init=False)

    def __post_init__(self) -> None:
        import sqlalchemy as sa

        try:
            shown = sa.make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # not parseable: create_engine below reports it
            shown = self.url.split("@")[-1]
        self.description = f"{shown}#{self.what}"
        self._is_query = self.what.lower().split(None, 1)[0] in {"select", "with"}
        try:
            engine = sa.create_engine(self.url)
        except Exception as exc:
            raise DataLoadError(f"cannot open database {self.description!r}: {exc}") from exc
        try:
            with engine.connect() as conn:
                if self._is_query:
                    result = conn.execute(sa.text(f"SELECT * FROM ({self.what}) AS q LIMIT 0"))
                    self.columns = list(result.keys())
                else:
                    inspector = sa.inspect(conn)
                    self.columns = [c["name"] for c in inspector.get_columns(self.what)]
                    count = sa.select(sa.func.count()).select_from(sa.table(self.what))
                    self.total_rows = int(conn.execute(count).scalar_one())
        except Exception as exc:
            raise DataLoadError(
                f"cannot read {self.what!r} from {self.description}: {exc}"
            ) from exc
        finally:
            engine.dispose()

    def chunks(self) -> Iterator[pd.DataFrame]:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        try:
            if self.chunk_rows is None:
                with engine.connect() as conn:
                    if self._is_query:
                        yield pd.read_sql_query(sa.text(self.what), conn)
                    else:  # reflected column types (dates come back as dates)
                        yield pd.read_sql_table(self.what, conn)
                return
            with engine.connect().execution_options(stream_results=True) as conn:
                if self._is_query:
                    statement: Any = sa.text(self.what)
                else:
                    statement = sa.select(sa.text("*")).select_from(sa.table(self.what))
                for frame in pd.read_sql(statement, conn, chunksize=self.chunk_rows):
                    yield frame.reset_index(drop=True)
        except DataLoadError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise DataLoadError(f"cannot read {self.what!r}: {exc}") from exc
        finally:
            engine.dispose()


def open_reader(
    source: str | Path,
    *,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    only: list[str] | None = None,
    categorical: list[str] | None = None,
) -> ChunkReader:
    """A reader for a file (format from its extension) or `SQLAlchemy URL#table`; `chunk_rows`
    None reads the whole table as one frame."""
    if chunk_rows is not None and chunk_rows < 1:
        raise DataLoadError(f"chunk size must be at least 1 row, got {chunk_rows}")
    kind = reader_kind(source)
    if kind == "sql":
        url, what = split_sql_source(str(source))
        return SqlReader(url, what, chunk_rows)
    path = Path(source)
    if kind == "parquet":
        return ParquetReader(path, chunk_rows, only, categorical)
    if kind == "tsv":
        return CsvReader(path, chunk_rows, sep="\t")
    if kind == "jsonl":
        return JsonLinesReader(path, chunk_rows)
    if kind == "excel":
        return ExcelReader(path, chunk_rows)
    return CsvReader(path, chunk_rows)


def read_table(source: str | Path) -> pd.DataFrame:
    """A whole table in one frame (training, EDA, monitoring files): text stays text."""
    reader = open_reader(source, chunk_rows=WHOLE, categorical=[])
    try:
        frames = list(reader.chunks())
    except DataLoadError:
        raise
    except Exception as exc:
        raise DataLoadError(f"cannot read {reader.description}: {exc}") from exc
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise DataLoadError(f"{reader.description} has no rows")
    return frame
