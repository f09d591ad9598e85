"""Read a customer table from CSV, XLSX, Parquet, JSON lines or SQL into one DataFrame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnops.data.sources import READERS, is_sql_url, split_sql_source
from churnops.errors import DataLoadError


def read_sql(url: str, table_or_query: str) -> pd.DataFrame:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except Exception as exc:  # bad dialect, missing driver
        raise DataLoadError(f"cannot open database {url!r}: {exc}") from exc
    is_query = table_or_query.lower().split(None, 1)[0] in {"select", "with"}
    try:
        with engine.connect() as conn:
            if is_query:
                return pd.read_sql_query(sa.text(table_or_query), conn)
            return pd.read_sql_table(table_or_query, conn)
    except Exception as exc:
        raise DataLoadError(f"cannot read {table_or_query!r} from {url!r}: {exc}") from exc
    finally:
        engine.dispose()


def read_table(source: str | Path) -> pd.DataFrame:
    """Load a whole table; the format comes from the extension, SQL from a SQLAlchemy URL."""
    text = str(source)
    if is_sql_url(text):
        return read_sql(*split_sql_source(text))
    path = Path(text)
    if not path.exists():
        raise DataLoadError(f"input not found: {path}")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataLoadError(
            f"unsupported file type {path.suffix!r} for {path}; "
            f"use one of {sorted(set(READERS))} or a SQLAlchemy URL"
        )
    try:
        if kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "tsv":
            frame = pd.read_csv(path, sep="\t")
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "excel":
            frame = pd.read_excel(path)
        else:
            frame = pd.read_json(path, lines=True)
    except Exception as exc:
        raise DataLoadError(f"cannot read {path}: {exc}") from exc
    if frame.empty:
        raise DataLoadError(f"{path} has no rows")
    return frame
