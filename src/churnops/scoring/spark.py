"""Spark engine: the same validation, encoding and trees as the pandas engine, in a pandas UDF.

The model bundle is loaded once on the driver and broadcast; each Python worker builds one `Scorer`
from it and scores Arrow batches with `mapInPandas`, so probabilities equal the pandas engine's.
Row numbers (for rejects) come from per-partition counts, without a shuffle of the data. Output is
written by Spark to a temporary directory and renamed into place through the Hadoop file system,
so a failed job never leaves a partial output under the output name (locally, HDFS, or S3A with a
committer).
"""

from __future__ import annotations

import io
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnops.errors import ConfigError, DataLoadError, DataValidationError, Problem
from churnops.modeling.registry import ModelIdentity
from churnops.scoring.batch import (
    MAX_PROBLEMS_SHOWN,
    REASONS_COLUMN,
    BatchOptions,
    BatchResult,
    BatchScorer,
    carried_columns,
    check_columns,
    summarise,
    write_summary,
)
from churnops.scoring.destinations import sidecar_paths, temporary_path
from churnops.scoring.fastpath import row_errors
from churnops.settings import RISK_LEVELS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from churnops.modeling.scorer import ModelBundle

ROW = "_churnops_row"
REASON = "_churnops_reason"
PROFILE = "_churnops_profile"  # a batch's population summary (JSON) on its first output row
SPARK_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json"}
_WORKER_SCORERS: dict[str, BatchScorer] = {}


def spark_session(master: str | None = None, *, app_name: str = "churnops-predict") -> SparkSession:
    """A session for scoring: `local[*]` unless a master is given or set by spark-submit."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("the Spark engine needs PySpark: pip install 'churnops[spark]'") from exc
    resolved = master or SparkConf().get("spark.master") or "local[*]"
    if resolved.startswith("local"):
        # Local workers must run this interpreter (the one with churnops and its dependencies).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(resolved)
    defaults = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
    }
    for key, value in defaults.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    if not (session.sparkContext.master or "local").startswith("local"):
        ship_package(session)
    return session


def ship_package(session: SparkSession) -> None:
    """Send the churnops package to the executors (they still need its dependencies)."""
    import tempfile
    import zipfile

    package = Path(__file__).resolve().parents[1]
    archive = Path(tempfile.mkdtemp(prefix="churnops-spark-")) / "churnops.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in package.rglob("*.py"):
            bundle.write(file, Path("churnops") / file.relative_to(package))
    session.sparkContext.addPyFile(str(archive))


def _spark_format(path: str) -> str:
    suffix = Path(path.rstrip("/")).suffix.lower()
    kind = SPARK_FORMATS.get(suffix)
    if kind is None:
        raise ConfigError(
            f"the Spark engine reads and writes .parquet, .csv and .jsonl, not {path!r}"
        )
    return kind


def read_input(spark: SparkSession, source: str) -> DataFrame:
    """Parquet with its own types; CSV and JSON lines as text, typed per batch like pandas would."""
    kind = _spark_format(source)
    try:
        if kind == "parquet":
            return spark.read.parquet(source)
        if kind == "csv":
            return spark.read.option("header", True).option("inferSchema", False).csv(source)
        return spark.read.json(source)
    except Exception as exc:  # AnalysisException: path does not exist, unreadable
        raise DataLoadError(f"Spark cannot read {source}: {str(exc).splitlines()[0]}") from exc


def _numbered(spark: SparkSession, frame: DataFrame) -> DataFrame:
    """Add a 1-based row number in input order from per-partition counts (no shuffle of rows)."""
    from pyspark.sql import functions as F  # noqa: N812

    with_ids = frame.withColumn("_pid", F.spark_partition_id()).withColumn(
        "_mid", F.monotonically_increasing_id()
    )
    counts = sorted(
        (int(r["_pid"]), int(r["count"])) for r in with_ids.groupBy("_pid").count().collect()
    )
    offsets, running = [], 0
    for pid, count in counts:
        offsets.append((pid, running))
        running += count
    if not offsets:
        offsets = [(0, 0)]
    table = spark.createDataFrame(offsets, "_pid int, _offset long")
    local = F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), 33)
    return (
        with_ids.join(F.broadcast(table), "_pid")
        .withColumn(ROW, F.col("_offset") + local + F.lit(1))
        .drop("_pid", "_mid", "_offset")
    )


def _typed_numbers(frame: pd.DataFrame, scorer: BatchScorer) -> pd.DataFrame:
    """Text columns that should be numbers become numbers when every value parses (as read_csv)."""
    out = frame
    for column in scorer.scorer.schema.features:
        series = frame[column.name]
        if not column.is_numeric_encoded or pd.api.types.is_numeric_dtype(series):
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        if int(parsed.isna().sum()) == int(series.isna().sum()):
            if out is frame:
                out = frame.copy()
            out[column.name] = parsed
    return out


def _score_batches(
    bundle_bytes: Any, model: ModelIdentity, options: BatchOptions, carried: list[str]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function: scored rows carry scores, rejected rows carry a reason."""
    key = f"{model.uri}:{model.version}:{id(bundle_bytes)}"
    profile = options.profile

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        batch_scorer = _WORKER_SCORERS.get(key)
        if batch_scorer is None:
            import joblib

            from churnops.modeling.scorer import Scorer

            bundle = joblib.load(io.BytesIO(bundle_bytes.value))
            batch_scorer = BatchScorer(Scorer(bundle), model, options)
            _WORKER_SCORERS[key] = batch_scorer
        schema = batch_scorer.scorer.schema
        for raw in batches:
            frame = _typed_numbers(raw, batch_scorer)
            n = len(frame)
            errors = row_errors(frame, schema)
            bad = np.zeros(n, dtype=bool) if errors is None else (errors != "").to_numpy()
            good = frame.loc[~bad].reset_index(drop=True)
            probability, will_churn, codes = batch_scorer._predict(good)
            out = pd.DataFrame({name: raw[name] for name in [ROW, *carried]})
            out[REASON] = errors.where(bad, None) if errors is not None else None
            full_p = np.full(n, np.nan)
            full_p[~bad] = probability
            out["churn_probability"] = np.where(bad, np.nan, full_p)
            churn = pd.array([None] * n, dtype="boolean")
            churn[~bad] = will_churn
            out["will_churn"] = churn
            levels = np.full(n, None, dtype=object)
            levels[~bad] = np.asarray(["low", "medium", "high"], dtype=object)[codes]
            out["risk_level"] = levels
            if profile:
                # Mergeable counts of this batch's scored rows; the driver adds them up.
                texts = np.full(n, None, dtype=object)
                if n:
                    population = batch_scorer._empty_population()
                    population.update(
                        good[schema.feature_names].assign(
                            churn_probability=probability,
                            will_churn=will_churn,
                            risk_level=np.asarray(RISK_LEVELS, dtype=object)[codes],
                        )
                    )
                    texts[0] = population.to_json()
                out[PROFILE] = texts
            if options.reasons:
                texts = np.full(n, None, dtype=object)
                if len(good):
                    texts[~bad] = batch_scorer.scorer.predict_frame(good, reasons=True)[
                        REASONS_COLUMN
                    ].to_numpy()
                out[REASONS_COLUMN] = texts
            yield out

    return score


def _rename_into_place(spark: SparkSession, temp: str, target: str) -> None:
    """Replace `target` with the finished `temp` directory through Hadoop's FileSystem API."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path  # type: ignore[union-attr]
    target_path, temp_path = hadoop_path(target), hadoop_path(temp)
    fs = target_path.getFileSystem(conf)
    old = None
    if fs.exists(target_path):
        old = hadoop_path(f"{target.rstrip('/')}.old-{uuid.uuid4().hex[:8]}")
        fs.rename(target_path, old)
    if not fs.rename(temp_path, target_path):
        if old is not None:
            fs.rename(old, target_path)
        raise DataLoadError(f"cannot move the Spark output into place at {target}")
    if old is not None:
        fs.delete(old, True)


def _delete(spark: SparkSession, path: str) -> None:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
    fs = hadoop_path.getFileSystem(conf)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


def _temp_sibling(path: str) -> str:
    head, _, tail = path.rstrip("/").rpartition("/")
    name = f"_tmp-{tail}-{uuid.uuid4().hex[:8]}"
    return f"{head}/{name}" if head else name


def _write(frame: DataFrame, path: str, kind: str) -> None:
    writer = frame.write.mode("overwrite")
    if kind == "csv":
        writer.option("header", True).csv(path)
    elif kind == "json":
        writer.option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").json(path)
    else:
        writer.parquet(path)


def score_with_spark(
    source: str,
    output: str,
    *,
    model_uri: str,
    model: ModelIdentity,
    options: BatchOptions,
    rejects: str | None = None,
    master: str | None = None,
    spark: SparkSession | None = None,
    bundle: ModelBundle | None = None,
) -> BatchResult:
    """Score `source` into `output` (a directory of part files) with Spark; summary as pandas'."""
    import joblib
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    out_kind = _spark_format(output)
    if bundle is None:
        from churnops.modeling.pyfunc import load_scorer

        bundle = load_scorer(model_uri)[0].bundle
    started = datetime.now(UTC)
    clock = time.perf_counter()
    session = spark or spark_session(master)
    frame = read_input(session, source)
    check_columns(list(frame.columns), bundle.schema, options)
    carried = carried_columns(list(frame.columns), bundle.schema, options)

    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    broadcast = session.sparkContext.broadcast(buffer.getvalue())
    worker_options = BatchOptions(
        reasons=options.reasons,
        on_error=options.on_error,
        threads=1,
        profile=options.profile,
        tables=options.tables,
    )
    fingerprint = spark_input_fingerprint(source)
    numbered = _numbered(session, frame)
    fields = [numbered.schema[ROW], *(numbered.schema[c] for c in carried)]
    fields += [
        T.StructField(REASON, T.StringType()),
        T.StructField("churn_probability", T.DoubleType()),
        T.StructField("will_churn", T.BooleanType()),
        T.StructField("risk_level", T.StringType()),
    ]
    if options.reasons:
        fields.append(T.StructField(REASONS_COLUMN, T.StringType()))
    if options.profile:
        fields.append(T.StructField(PROFILE, T.StringType()))
    scored = numbered.select(ROW, *frame.columns).mapInPandas(
        _score_batches(broadcast, model, worker_options, carried), T.StructType(fields)
    )
    scored = scored.persist()
    summary_path, default_rejects = sidecar_paths(output)
    rejects_path = rejects or str(default_rejects)
    temp_output = _temp_sibling(output)
    try:
        totals = scored.agg(
            F.count(F.lit(1)).alias("read"),
            F.count("churn_probability").alias("scored"),
            F.sum(F.col("churn_probability")).alias("probability_sum"),
            F.sum(F.col("will_churn").cast("long")).alias("positive"),
        ).collect()[0]
        risk = {
            r["risk_level"]: int(r["count"])
            for r in scored.where(F.col(REASON).isNull()).groupBy("risk_level").count().collect()
        }
        read, n_scored = int(totals["read"]), int(totals["scored"])
        bad = scored.where(F.col(REASON).isNotNull())
        if read != n_scored and options.on_error == "fail":
            first = bad.orderBy(ROW).select(ROW, REASON).limit(MAX_PROBLEMS_SHOWN).collect()
            problems = [Problem(None, f"row {r[ROW]}: {r[REASON]}") for r in first]
            problems.append(
                Problem(
                    None,
                    f"{read - n_scored} bad row(s) in all; nothing was written; "
                    "use --on-error skip to write them to a rejects file",
                )
            )
            raise DataValidationError(problems)
        columns = [*carried, "churn_probability", "will_churn", "risk_level"]
        result = scored.where(F.col(REASON).isNull()).select(
            *columns,
            F.lit(model.name).alias("model_name"),
            F.lit(model.version).alias("model_version"),
            F.lit(started.replace(tzinfo=None)).cast("timestamp").alias("scored_at"),
            *([REASONS_COLUMN] if options.reasons else []),
        )
        _write(result, temp_output, "json" if out_kind == "json" else out_kind)
        if options.on_error == "skip":
            id_column = bundle.schema.id_column
            reject_columns = [F.col(ROW).alias("row")]
            if id_column and id_column in carried:
                reject_columns.append(F.col(id_column))
            reject_columns.append(F.col(REASON).alias("reason"))
            rows = bad.orderBy(ROW).select(*reject_columns).toPandas()
            staged = temporary_path(Path(rejects_path))
            rows.to_csv(staged, index=False)
            staged.replace(rejects_path)
        population = _population(scored, bundle, started) if options.profile else None
        _rename_into_place(session, temp_output, output)
    except BaseException:
        _delete(session, temp_output)
        raise
    finally:
        scored.unpersist()
        broadcast.unpersist()
    summary = summarise(
        read=read,
        scored=n_scored,
        rejected=read - n_scored,
        positive=int(totals["positive"] or 0),
        probability_sum=float(totals["probability_sum"] or 0.0),
        risk=risk,
        model=model,
        source=source,
        output=output,
        rejects=rejects_path if options.on_error == "skip" else None,
        started=started,
        duration=time.perf_counter() - clock,
        fingerprint=fingerprint.value() if fingerprint is not None else None,
        engine_name="spark",
    )
    summary.predictor = _expected_predictor(bundle, options)
    write_summary(summary, summary_path)
    return BatchResult(summary=summary, population=population)


def _expected_predictor(bundle: ModelBundle, options: BatchOptions) -> str:
    """What the workers score with: the tables when they can be built (each worker still checks
    them against the booster on its first batch and falls back on its own), else the booster."""
    from churnops.modeling.scorer import Scorer

    if not options.tables:
        return "booster"
    return BatchScorer(Scorer(bundle), ModelIdentity("", "", ""), options).predictor_name


def spark_input_fingerprint(source: str) -> Any | None:
    """The pandas engine's file digest for a local file input; None for folders and remote URLs
    (hashing them would mean reading the whole input on the driver)."""
    from churnops.data.fingerprint import input_fingerprint

    path = Path(source.removeprefix("file://"))
    if "://" in source.removeprefix("file://") or not path.is_file():
        return None
    return input_fingerprint(str(path), [])


def _population(scored: DataFrame, bundle: ModelBundle, started: datetime) -> Any:
    """The run's WindowSummary: the per-batch summaries from the workers, merged on the driver."""
    from pyspark.sql import functions as F  # noqa: N812

    from churnops.monitoring.summary import WindowSummary, merge_all
    from churnops.scoring.batch import empty_population

    empty = empty_population(bundle)
    parts = [empty]
    for row in scored.where(F.col(PROFILE).isNotNull()).select(PROFILE).toLocalIterator():
        parts.append(WindowSummary.from_json(row[PROFILE], empty.reference))
    population = merge_all(parts)
    population.start = population.end = started
    return population
