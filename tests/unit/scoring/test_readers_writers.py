"""Chunked readers agree with whole-table reads; writers are atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.data.ingest import open_reader, read_table
from churnops.errors import ConfigError, DataLoadError
from churnops.scoring.destinations import output_kind
from churnops.scoring.writers import open_writer


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"C{i:03d}" for i in range(23)],
            "plan": ["a", "b", None] * 7 + ["a", "b"],
            "spend": [float(i) / 3 for i in range(23)],
            "months": list(range(23)),
        }
    )


def _write_input(frame: pd.DataFrame, path: Path) -> str:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False)
    elif suffix == ".db":
        engine = sa.create_engine(f"sqlite:///{path}")
        frame.to_sql("customers", engine, index=False)
        engine.dispose()
        return f"sqlite:///{path}#customers"
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl", ".xlsx", ".db"])
def test_chunks_add_up_to_the_whole_table(table: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    source = _write_input(table, tmp_path / f"input{suffix}")
    reader = open_reader(source, chunk_rows=5)
    assert reader.columns == list(table.columns)
    chunks = list(reader.chunks())
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    whole = pd.concat(chunks, ignore_index=True)
    expected = read_table(source)
    for column in table.columns:
        assert whole[column].astype(object).where(whole[column].notna(), None).tolist() == (
            expected[column].astype(object).where(expected[column].notna(), None).tolist()
        ), column
    if reader.total_rows is not None:
        assert reader.total_rows == len(table)


def test_sql_query_source(table: pd.DataFrame, tmp_path: Path) -> None:
    source = _write_input(table, tmp_path / "input.db")
    url = source.split("#")[0]
    reader = open_reader(f"{url}#SELECT id, spend FROM customers WHERE months < 10", chunk_rows=4)
    assert reader.columns == ["id", "spend"]
    assert sum(len(c) for c in reader.chunks()) == 10


def test_parquet_reads_text_as_categoricals_only_where_asked(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    source = _write_input(table, tmp_path / "input.parquet")
    chunk = next(open_reader(source, chunk_rows=50, categorical=["plan"]).chunks())
    assert isinstance(chunk["plan"].dtype, pd.CategoricalDtype)
    assert not isinstance(chunk["id"].dtype, pd.CategoricalDtype)


def test_unknown_inputs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataLoadError, match="not found"):
        open_reader(tmp_path / "missing.csv")
    odd = tmp_path / "x.dat"
    odd.write_text("a\n1\n")
    with pytest.raises(DataLoadError, match="unsupported"):
        open_reader(odd)
    with pytest.raises(DataLoadError, match="needs a table"):
        open_reader("sqlite:///x.db")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_writer_commit_and_abort(table: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    writer = open_writer(str(target))
    writer.write(table.iloc[:10])
    writer.write(table.iloc[10:])
    assert not target.exists()  # nothing visible before commit
    writer.commit()
    assert len(read_table(target)) == len(table)
    assert list(tmp_path.iterdir()) == [target]

    target.write_text("previous")
    failed = open_writer(str(target))
    failed.write(table)
    failed.abort()
    assert target.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [target]


def test_parquet_writer_unifies_chunk_types(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    writer = open_writer(str(target))
    writer.write(pd.DataFrame({"x": [1, 2], "note": [None, None]}))
    writer.write(pd.DataFrame({"x": [3.0, 4.0], "note": ["a", None]}))
    writer.commit()
    back = pd.read_parquet(target)
    assert back["x"].tolist() == [1, 2, 3, 4]
    assert back["note"].tolist()[2] == "a"


def test_sql_writer_swaps_table_atomically(table: pd.DataFrame, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'out.db'}"
    engine = sa.create_engine(url)
    pd.DataFrame({"old": [1]}).to_sql("scores", engine, index=False)
    failed = open_writer(f"{url}#scores")
    failed.write(table)
    failed.abort()
    assert pd.read_sql_table("scores", engine).columns.tolist() == ["old"]
    writer = open_writer(f"{url}#scores")
    writer.write(table.iloc[:10])
    writer.write(table.iloc[10:])
    writer.commit()
    assert len(pd.read_sql_table("scores", engine)) == len(table)
    assert sa.inspect(engine).get_table_names() == ["scores"]
    engine.dispose()


def test_output_kind() -> None:
    assert output_kind("a.parquet") == "parquet"
    assert output_kind("postgresql://h/db#t") == "sql"
    with pytest.raises(ConfigError):
        output_kind("a.xlsx")


def test_parquet_writer_uses_dictionaries_only_where_values_repeat(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from churnops.scoring.writers import ParquetWriter

    n = 5000
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "churn_probability": np.linspace(0, 1, n),
            "segment": ["a", "b"] * (n // 2),
            "risk_level": pd.Categorical(["low", "high"] * (n // 2)),
        }
    )
    writer = ParquetWriter(tmp_path / "out.parquet")
    writer.write(frame)
    writer.write(frame)
    writer.commit()
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    encodings = {
        meta.schema.column(j).name: meta.row_group(0).column(j).encodings
        for j in range(meta.num_columns)
    }
    assert not any("DICTIONARY" in e for e in encodings["customer_id"])
    assert not any("DICTIONARY" in e for e in encodings["churn_probability"])
    assert any("DICTIONARY" in e for e in encodings["segment"])
    assert any("DICTIONARY" in e for e in encodings["risk_level"])
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert len(back) == 2 * n
    assert back["customer_id"].astype(str).tolist()[:3] == ["C000000", "C000001", "C000002"]


def _pandas_whole(source: str) -> pd.DataFrame:
    """How pandas itself reads each format in one go (what `read_table` must keep giving)."""
    if source.startswith("sqlite:"):
        url, table = source.split("#")
        engine = sa.create_engine(url)
        try:
            return pd.read_sql_table(table, engine)
        finally:
            engine.dispose()
    readers = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
        ".xlsx": pd.read_excel,
    }
    return readers[Path(source).suffix](source)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl", ".xlsx", ".db"])
def test_whole_table_read_is_the_chunked_reader_in_one_chunk(
    table: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    """One reader family: `read_table` is `open_reader(chunk_rows=None)`, typed as pandas' own
    whole-file read, and its fingerprint equals the one streamed over any chunking."""
    from churnops.data.fingerprint import RowFingerprint, fingerprint

    source = _write_input(table, tmp_path / f"input{suffix}")
    whole = read_table(source)
    chunks = list(open_reader(source, chunk_rows=None, categorical=[]).chunks())
    assert len(chunks) == 1
    pd.testing.assert_frame_equal(whole, chunks[0])
    pd.testing.assert_frame_equal(whole, _pandas_whole(source))
    streamed = RowFingerprint(list(whole.columns))
    for chunk in open_reader(source, chunk_rows=7, categorical=[]).chunks():
        streamed.update(chunk)
    assert streamed.hexdigest() == fingerprint(whole)
    assert streamed.value() == f"sha256-rows:{streamed.hexdigest()}"


def test_an_empty_table_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(DataLoadError, match="has no rows"):
        read_table(empty)
