"""Streaming batch scoring: read, validate, encode, predict and write in bounded chunks.

Three stages overlap on two cores: a reader thread (pyarrow/pandas parsing, fingerprinting), the
scoring stage (encoding plus multi-threaded trees, which release the GIL) and a writer thread
(output, rejects, population summary). Queues between them hold at most two chunks, so peak memory
depends on the chunk size, not on the file size. Output and rejects are written atomically.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnops.data.fingerprint import FileFingerprint, RowFingerprint, input_fingerprint
from churnops.data.ingest import DEFAULT_CHUNK_ROWS, ChunkReader, ParquetReader, open_reader
from churnops.data.schema import Schema
from churnops.errors import ChurnopsError, ConfigError, DataValidationError, Problem
from churnops.modeling.predictors import SMALL_REQUEST_ROWS, XGBoostPredictor
from churnops.modeling.registry import ModelIdentity
from churnops.modeling.scorer import Scorer
from churnops.scoring.destinations import sidecar_paths, temporary_path
from churnops.scoring.fastpath import ChunkEncoder, row_errors
from churnops.scoring.treetables import TOLERANCE, TreeTables
from churnops.scoring.writers import ChunkWriter, CsvWriter, open_writer
from churnops.settings import RISK_LEVELS

logger = logging.getLogger(__name__)

OnError = Literal["fail", "skip"]
SCORE_COLUMNS = (
    "churn_probability",
    "will_churn",
    "risk_level",
    "model_name",
    "model_version",
    "scored_at",
)
REASONS_COLUMN = "reasons"
QUEUE_CHUNKS = 2
CHECK_ROWS = 10_000  # rows of the first chunk scored both ways before trusting the tables
NEAR_CUT = 1e-4  # rows this close to a decision cut are rescored by the booster
MAX_PROBLEMS_SHOWN = 10
Progress = Callable[[int, int | None], None]  # (rows read so far, total rows or None)


@dataclass(frozen=True)
class BatchOptions:
    reasons: bool = False
    on_error: OnError = "fail"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    keep: tuple[str, ...] = ()
    threads: int = 2
    profile: bool = True  # build the population summary for drift monitoring
    tables: bool = True  # XGBoost as lookup tables when they reproduce the booster (checked)


@dataclass
class BatchSummary:
    """What a run did; printed, written beside the output and stored with the run."""

    input: str
    output: str
    rejects: str | None
    engine: str
    model_name: str
    model_version: str
    model_uri: str
    started_at: str
    finished_at: str
    duration_seconds: float
    rows_read: int
    rows_scored: int
    rows_rejected: int
    rows_per_second: float
    risk_levels: dict[str, dict[str, float]]  # level -> {"count": n, "share": s}
    predicted_churn_rate: float | None
    mean_probability: float | None
    input_fingerprint: str | None = None  # "sha256-file:<hex>" or "sha256-rows:<hex>"
    status: str = "succeeded"
    predictor: str = "booster"  # "tables" when the lookup tables scored the run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchResult:
    summary: BatchSummary
    population: Any | None = None  # monitoring WindowSummary of the scored rows, when built


@dataclass
class RunTally:
    """Running counts of the scored population (mergeable, so any chunking gives one answer)."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    positive: int = 0
    probability_sum: float = 0.0
    risk: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RISK_LEVELS, 0))

    def add_scores(
        self, probability: np.ndarray, will_churn: np.ndarray, levels: np.ndarray
    ) -> None:
        self.scored += len(probability)
        self.positive += int(will_churn.sum())
        self.probability_sum += float(probability.sum())
        counts = np.bincount(levels, minlength=len(RISK_LEVELS))
        for name, count in zip(RISK_LEVELS, counts, strict=True):
            self.risk[name] += int(count)


@dataclass
class _Prepared:
    """A chunk after validation and encoding (done on the reader thread)."""

    offset: int
    n_read: int
    good: pd.DataFrame
    rejected: pd.DataFrame | None
    numeric: np.ndarray  # (numeric columns x rows) standardised
    codes: np.ndarray  # (blocks x rows) category offsets, -1 unknown


_DONE = object()


class _Stage(threading.Thread):
    """A daemon thread that keeps its exception for the caller and stops the run on failure."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._stop_run = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:
            self.error = exc
            self._stop_run.set()


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put unless the run is stopping; False when it is."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    """The next item, or _DONE once the run is stopping."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _DONE


class BatchScorer:
    """Scores a chunked input into an atomic output with one loaded model."""

    def __init__(self, scorer: Scorer, model: ModelIdentity, options: BatchOptions) -> None:
        self.scorer = scorer
        self.model = model
        self.options = options
        is_xgboost = isinstance(scorer.predictor, XGBoostPredictor)
        self.encoder = ChunkEncoder(scorer.encoder, np.float32 if is_xgboost else np.float64)
        # Decided once per run, on the first chunk (`_choose_engine`).
        self.tables: TreeTables | None = None
        self._booster: Any = None
        self._engine: str | None = None
        self._checked = False
        self.tally: RunTally | None = None  # counts of the current or last run (also when it fails)
        self._level_names = pd.CategoricalDtype(list(RISK_LEVELS))
        self._cuts = (scorer.threshold, scorer.risk_bands.medium, scorer.risk_bands.high)
        scorer.set_threads(options.threads)

    @property
    def predictor_name(self) -> str:
        """walk, tables or booster: what scored this run (for a run not started: a large one)."""
        if self._engine is None:
            self._choose_engine(SMALL_REQUEST_ROWS + 1)
        return str(self._engine)

    def _choose_engine(self, rows: int) -> None:
        """Once per run, from the first chunk's size. A first chunk the flat walk scores alone
        (<= SMALL_REQUEST_ROWS: a small input, the engine the API uses for the same customers)
        keeps the walk and never loads the booster (nor its library: ~1.2 s of a 10-row run);
        otherwise the tables when they can be built (confirmed on the first chunk), else the
        booster."""
        predictor = self.scorer.predictor
        if rows <= SMALL_REQUEST_ROWS and getattr(predictor, "flat", None) is not None:
            self._engine = "walk"
            return
        if self.options.tables and isinstance(predictor, XGBoostPredictor):
            self._booster = predictor.booster
            self.tables = TreeTables.build(predictor.booster, self.scorer.encoder)
        self._engine = "tables" if self.tables is not None else "booster"

    # -- per chunk ---------------------------------------------------------------------------

    def _encode_parts(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.encoder.numeric(frame), self.encoder.codes(frame)

    def _check_tables(self, tables: TreeTables, numeric: np.ndarray, codes: np.ndarray) -> None:
        """Score the first rows both ways; keep the tables only if they match the booster."""
        n = min(CHECK_ROWS, numeric.shape[1])
        if n == 0:
            return
        self._checked = True
        ours = tables.proba(numeric[:, :n], codes[:, :n])
        theirs = self._booster_proba(numeric[:, :n], codes[:, :n])
        worst = float(np.max(np.abs(ours - theirs)))
        if not worst <= TOLERANCE:
            logger.warning(
                "lookup tables differ from the booster by %.2g; scoring with the booster", worst
            )
            self.tables = None
            self._engine = "booster"

    def _booster_proba(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The booster's own probabilities (never the predictor's small-input shortcut)."""
        matrix = self.encoder.assemble(numeric, codes)
        return np.asarray(self._booster.inplace_predict(matrix), dtype=np.float64)

    def _raw_probability(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        if self._engine is None:
            self._choose_engine(numeric.shape[1])
        tables = self.tables
        if tables is not None and not self._checked:
            self._check_tables(tables, numeric, codes)
            tables = self.tables
        if tables is not None:
            return tables.proba(numeric, codes)
        return self.scorer.predictor.proba(self.encoder.assemble(numeric, codes))

    def _probability(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Calibrated P(churn); rows the tables put next to a decision cut get the booster's."""
        calibrator = self.scorer.bundle.calibrator
        probability = np.asarray(
            calibrator.apply(self._raw_probability(numeric, codes)), dtype=np.float64
        )
        if self.tables is not None and probability.size:
            # The tables agree with the booster to ~1e-7, not bit for bit: the few rows that
            # close to the threshold or a risk band are rescored so decisions match exactly.
            near = np.zeros(probability.size, dtype=bool)
            for cut in self._cuts:
                near |= np.abs(probability - cut) <= NEAR_CUT
            if near.any():
                rows = np.flatnonzero(near)
                exact = self._booster_proba(numeric[:, rows], codes[:, rows])
                probability[rows] = np.asarray(calibrator.apply(exact), dtype=np.float64)
        return probability

    def _decide(self, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        will_churn = probability >= self.scorer.threshold
        return probability, will_churn, self.scorer.risk_codes(probability)

    def _predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probability, decision and risk-level code (0 low, 1 medium, 2 high) of clean rows."""
        return self._decide(self._probability(*self._encode_parts(frame)))

    def _output_frame(
        self,
        frame: pd.DataFrame,
        probability: np.ndarray,
        will_churn: np.ndarray,
        codes: np.ndarray,
        scored_at: pd.Timestamp,
    ) -> pd.DataFrame:
        n = len(frame)
        columns: dict[str, Any] = {}
        for name in self._carried(frame.columns):
            columns[name] = frame[name].array  # as read (Arrow strings stay Arrow strings)
        columns["churn_probability"] = probability
        columns["will_churn"] = will_churn
        columns["risk_level"] = pd.Categorical.from_codes(codes, dtype=self._level_names)
        columns["model_name"] = pd.Categorical.from_codes(
            np.zeros(n, dtype=np.int8), dtype=pd.CategoricalDtype([self.model.name])
        )
        columns["model_version"] = pd.Categorical.from_codes(
            np.zeros(n, dtype=np.int8), dtype=pd.CategoricalDtype([self.model.version])
        )
        columns["scored_at"] = pd.DatetimeIndex(np.full(n, scored_at.to_datetime64())).tz_localize(
            "UTC"
        )
        if self.options.reasons:
            scores = self.scorer.score_frame(frame, reasons=True)
            columns[REASONS_COLUMN] = [
                json.dumps([r.to_dict() for r in row]) for row in scores.reasons or []
            ]
        return pd.DataFrame(columns)

    def _carried(self, available: pd.Index) -> list[str]:
        return carried_columns(list(available), self.scorer.schema, self.options)

    def check_columns(self, columns: list[str]) -> None:
        check_columns(columns, self.scorer.schema, self.options)

    # -- the run -----------------------------------------------------------------------------

    def run(
        self,
        source: str,
        output: str,
        *,
        rejects: str | None = None,
        progress: Progress | None = None,
        engine_name: str = "pandas",
    ) -> BatchResult:
        """Score `source` into `output`; raises ChurnopsError (nothing written) on failure."""
        options = self.options
        if options.on_error not in ("fail", "skip"):
            raise ConfigError(f"--on-error must be fail or skip, not {options.on_error!r}")
        started = datetime.now(UTC)
        clock = time.perf_counter()
        categorical = [c.name for c in self.scorer.schema.features if not c.is_numeric_encoded]
        reader = open_reader(source, chunk_rows=options.chunk_rows, categorical=categorical)
        self.check_columns(reader.columns)
        fingerprint = input_fingerprint(source, reader.columns)
        if isinstance(reader, ParquetReader) and isinstance(fingerprint, FileFingerprint):
            # The fingerprint hashes the file, so only the columns scoring uses are parsed.
            needed = {*self.scorer.schema.feature_names, *self._carried(pd.Index(reader.columns))}
            reader.only = [c for c in reader.columns if c in needed]
        summary_path, default_rejects = sidecar_paths(output)
        rejects_path = Path(rejects) if rejects else default_rejects
        writer = open_writer(output)
        rejects_writer: ChunkWriter | None = None
        if options.on_error == "skip":
            rejects_writer = CsvWriter(rejects_path)
        population = self._empty_population() if options.profile else None
        tally = self.tally = RunTally()
        try:
            self._pipeline(
                reader, writer, rejects_writer, tally, fingerprint, population, started, progress
            )
            if tally.read != tally.scored + tally.rejected:  # the invariant, checked every run
                raise ChurnopsError(
                    f"internal error: read {tally.read} != scored {tally.scored} "
                    f"+ rejected {tally.rejected}"
                )
            if rejects_writer is not None:
                rejects_writer.commit()
            writer.commit()
        except BaseException:
            writer.abort()
            if rejects_writer is not None:
                rejects_writer.abort()
            raise
        duration = time.perf_counter() - clock
        summary = self._summary(
            tally,
            source=reader.description,
            output=writer.description,
            rejects=str(rejects_path) if rejects_writer is not None else None,
            started=started,
            duration=duration,
            fingerprint=fingerprint.value(),
            engine_name=engine_name,
        )
        summary.predictor = self.predictor_name
        write_summary(summary, summary_path)
        if population is not None:
            population.start = population.end = started
        return BatchResult(summary=summary, population=population)

    def _empty_population(self) -> Any:
        return empty_population(self.scorer.bundle)

    def _pipeline(
        self,
        reader: ChunkReader,
        writer: ChunkWriter,
        rejects_writer: ChunkWriter | None,
        tally: RunTally,
        fingerprint: RowFingerprint | FileFingerprint,
        population: Any | None,
        started: datetime,
        progress: Progress | None,
    ) -> None:
        stop = threading.Event()
        inbox: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_CHUNKS)
        outbox: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_CHUNKS)
        id_column = self.scorer.schema.id_column
        schema = self.scorer.schema
        feature_names = schema.feature_names
        scored_at = pd.Timestamp(started.replace(tzinfo=None))

        on_error = self.options.on_error

        def prepare(offset: int, chunk: pd.DataFrame) -> _Prepared:
            errors = row_errors(chunk, schema)
            rejected: pd.DataFrame | None = None
            good = chunk
            if errors is not None:
                if on_error == "fail":
                    raise _bad_rows_error(errors, offset)
                bad = (errors != "").to_numpy()
                rejected = _reject_frame(chunk, errors, bad, offset, id_column)
                good = chunk.loc[~bad].reset_index(drop=True)
            numeric, codes = self._encode_parts(good)
            return _Prepared(offset, len(chunk), good, rejected, numeric, codes)

        def read() -> None:
            # Parsing, fingerprinting, validation and encoding of chunk k+1 happen here while the
            # scoring stage runs the trees on chunk k.
            offset = 0
            try:
                for chunk in reader.chunks():
                    fingerprint.update(chunk)
                    if not _put(inbox, prepare(offset, chunk), stop):
                        return
                    offset += len(chunk)
            finally:
                _put(inbox, _DONE, stop)

        def write() -> None:
            while True:
                item = _get(outbox, stop)
                if item is _DONE:
                    return
                out, rejected, scored = item
                if rejected is not None and rejects_writer is not None and len(rejected):
                    rejects_writer.write(rejected)
                writer.write(out)
                if population is not None:
                    good, probability, will_churn = scored
                    population.update(
                        good[feature_names].assign(
                            churn_probability=probability,
                            will_churn=will_churn,
                            risk_level=out["risk_level"].to_numpy(),
                        )
                    )

        reader_stage = _Stage("churnops-read", read, stop)
        writer_stage = _Stage("churnops-write", write, stop)
        if rejects_writer is not None:
            header = ["row", *([id_column] if id_column else []), "reason"]
            rejects_writer.write(pd.DataFrame(columns=header))
        reader_stage.start()
        writer_stage.start()
        try:
            while True:
                item = _get(inbox, stop)
                if item is _DONE:
                    break
                prepared: _Prepared = item
                tally.read += prepared.n_read
                if prepared.rejected is not None:
                    tally.rejected += len(prepared.rejected)
                good = prepared.good
                probability = self._probability(prepared.numeric, prepared.codes)
                probability, will_churn, codes = self._decide(probability)
                tally.add_scores(probability, will_churn, codes)
                out = self._output_frame(good, probability, will_churn, codes, scored_at)
                scored = (good, probability, will_churn)
                if not _put(outbox, (out, prepared.rejected, scored), stop):
                    break
                if progress is not None:
                    progress(tally.read, reader.total_rows)
            if reader_stage.error is None:
                _put(outbox, _DONE, stop)
        except BaseException:
            stop.set()
            raise
        finally:
            writer_stage.join()
            stop.set()
            reader_stage.join(timeout=30)
        for stage in (reader_stage, writer_stage):
            if stage.error is not None:
                raise stage.error

    def _summary(
        self,
        tally: RunTally,
        *,
        source: str,
        output: str,
        rejects: str | None,
        started: datetime,
        duration: float,
        fingerprint: str | None,
        engine_name: str,
    ) -> BatchSummary:
        return summarise(
            read=tally.read,
            scored=tally.scored,
            rejected=tally.rejected,
            positive=tally.positive,
            probability_sum=tally.probability_sum,
            risk=tally.risk,
            model=self.model,
            source=source,
            output=output,
            rejects=rejects,
            started=started,
            duration=duration,
            fingerprint=fingerprint,
            engine_name=engine_name,
        )


def empty_population(bundle: Any) -> Any:
    """An empty monitoring WindowSummary against the reference profile inside the model."""
    from churnops.monitoring.model_reference import reference_from_bundle
    from churnops.monitoring.summary import WindowSummary

    return WindowSummary.empty(reference_from_bundle(bundle))


def carried_columns(available: list[str], schema: Schema, options: BatchOptions) -> list[str]:
    """Input columns copied to the output: the id column, then the ones asked for."""
    wanted: list[str] = []
    if schema.id_column and schema.id_column in available:
        wanted.append(schema.id_column)
    for name in options.keep:
        if name not in wanted:
            wanted.append(name)
    return wanted


def check_columns(columns: list[str], schema: Schema, options: BatchOptions) -> None:
    """Fail up front on missing required feature columns or unusable --keep columns."""
    present = set(columns)
    problems = [
        Problem(c.name, "required column is missing from the input")
        for c in schema.features
        if c.name not in present
    ]
    if problems:
        raise DataValidationError(problems)
    unknown = [k for k in options.keep if k not in present]
    if unknown:
        raise ConfigError(f"--keep column(s) not in the input: {', '.join(unknown)}")
    clash = [k for k in options.keep if k in SCORE_COLUMNS or k == REASONS_COLUMN]
    if clash:
        raise ConfigError(f"--keep column(s) clash with output columns: {', '.join(clash)}")


def summarise(
    *,
    read: int,
    scored: int,
    rejected: int,
    positive: int,
    probability_sum: float,
    risk: Mapping[str, int],
    model: ModelIdentity,
    source: str,
    output: str,
    rejects: str | None,
    started: datetime,
    duration: float,
    fingerprint: str | None,
    engine_name: str,
) -> BatchSummary:
    """The run summary from its counts (shared by the pandas and Spark engines)."""
    levels = {
        name: {
            "count": int(risk.get(name, 0)),
            "share": (risk.get(name, 0) / scored) if scored else 0.0,
        }
        for name in RISK_LEVELS
    }
    return BatchSummary(
        input=source,
        output=output,
        rejects=rejects,
        engine=engine_name,
        model_name=model.name,
        model_version=model.version,
        model_uri=model.uri,
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        duration_seconds=round(duration, 3),
        rows_read=read,
        rows_scored=scored,
        rows_rejected=rejected,
        rows_per_second=round(read / duration, 1) if duration > 0 else 0.0,
        risk_levels=levels,
        predicted_churn_rate=positive / scored if scored else None,
        mean_probability=probability_sum / scored if scored else None,
        input_fingerprint=fingerprint,
    )


def write_summary(summary: BatchSummary, path: Path) -> None:
    """The summary as JSON, written atomically."""
    temp = temporary_path(path)
    try:
        temp.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ChurnopsError(f"cannot write the summary {path}: {exc.strerror or exc}") from exc


def _reject_frame(
    chunk: pd.DataFrame, errors: pd.Series, bad: np.ndarray, offset: int, id_column: str | None
) -> pd.DataFrame:
    positions = np.flatnonzero(bad)
    columns: dict[str, Any] = {"row": positions + offset + 1}
    if id_column:
        columns[id_column] = (
            chunk[id_column].to_numpy()[positions] if id_column in chunk.columns else None
        )
    columns["reason"] = errors.to_numpy()[positions]
    return pd.DataFrame(columns)


def _bad_rows_error(errors: pd.Series, offset: int) -> DataValidationError:
    bad = errors[errors != ""]
    problems = [
        Problem(None, f"row {offset + int(pos) + 1}: {reason}")
        for pos, reason in zip(np.flatnonzero((errors != "").to_numpy()), bad, strict=True)
    ][:MAX_PROBLEMS_SHOWN]
    if len(bad) > MAX_PROBLEMS_SHOWN:
        problems.append(
            Problem(None, f"... and {len(bad) - MAX_PROBLEMS_SHOWN} more in this chunk")
        )
    problems.append(
        Problem(
            None,
            "nothing was written; use --on-error skip to score the good rows and "
            "write the bad ones to a rejects file",
        )
    )
    return DataValidationError(problems)


def iter_chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    """A frame as consecutive chunks (tests and in-memory callers)."""
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size].reset_index(drop=True)
