"""The trained model as one object: bundle (what is saved) and Scorer (what every consumer calls).

The API, the batch scorer, the Spark UDF and the MLflow pyfunc all score through `Scorer`, so they
can never disagree about columns, encodings, calibration, threshold or risk bands.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from churnops.data.profile import ReferenceProfile
from churnops.data.schema import Schema
from churnops.features.encoder import FastEncoder, Records
from churnops.lazy import lazy_module
from churnops.modeling import treewalk_aot
from churnops.modeling.calibration import Calibrator
from churnops.modeling.forest import RELEASE_GIL_ROWS
from churnops.modeling.predictors import predictor_for
from churnops.settings import RISK_LEVELS, RiskBands

if TYPE_CHECKING:
    import pandas as pd
else:  # frames only: the API scores plain records and never needs pandas
    pd = lazy_module("pandas")

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

TOP_REASONS = 3


@dataclass
class ModelBundle:
    """Everything needed to score and to monitor, saved as one artifact of the MLflow model."""

    schema: Schema
    pipeline: Pipeline  # fitted: "preprocess" ColumnTransformer + "classifier"
    calibrator: Calibrator
    threshold: float
    risk_bands: RiskBands
    profile: ReferenceProfile
    candidate: str
    params: dict[str, Any]
    metrics: dict[str, dict[str, float]]  # {"cv": {...}, "test": {...}}
    data_fingerprint: str
    trained_at: str
    leakage_flags: list[dict[str, Any]] = field(default_factory=list)
    input_example: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Reason:
    feature: str
    value: Any
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": self.value, "contribution": self.contribution}


class RowScore(NamedTuple):
    """One record's score as plain Python values, ready for a JSON response and the store.

    A named tuple: a frozen dataclass's `__init__` cost more than the rest of a row's scoring."""

    probability: float
    will_churn: bool
    risk_level: str
    confidence: float
    reasons: list[dict[str, Any]]  # {"feature", "value", "contribution"}, strongest first


@dataclass(frozen=True)
class Scores:
    probability: np.ndarray  # calibrated P(positive)
    will_churn: np.ndarray  # bool, probability >= threshold
    risk_level: np.ndarray  # object array of "low" / "medium" / "high"
    confidence: np.ndarray  # probability that the predicted class is right
    reasons: list[list[Reason]] | None = None

    def __len__(self) -> int:
        return len(self.probability)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


class DeferredPipeline:
    """Stands in for the fitted sklearn pipeline of a detached bundle: the real one is read from
    the model's bundle file on first use (only the reference path and a large batch need it)."""

    def __init__(self) -> None:
        self._load: Callable[[], Pipeline] | None = None
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def bind(self, load: Callable[[], Pipeline]) -> None:
        self._load = load

    def resolve(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                if self._load is None:
                    raise RuntimeError("detached model bundle with no bundle file bound")
                self._pipeline = self._load()
            return self._pipeline

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)


class Scorer:
    """Fast scoring of frames (vectorised) and plain records (no DataFrame) with one model."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self.schema = bundle.schema
        self.threshold = bundle.threshold
        self.risk_bands = bundle.risk_bands
        self.encoder = FastEncoder.from_fitted(
            bundle.pipeline.named_steps["preprocess"], bundle.schema
        )
        self.predictor = predictor_for(bundle.pipeline.named_steps["classifier"])
        self._bands = np.array([bundle.risk_bands.medium, bundle.risk_bands.high])
        self._band_edges = (bundle.risk_bands.medium, bundle.risk_bands.high)
        self._levels = np.array(RISK_LEVELS, dtype=object)

    @property
    def detachable(self) -> bool:
        return self.predictor.detachable

    def detached(self) -> Scorer:
        """A copy that keeps no library object (sklearn pipeline, booster): pickled into the local
        model cache, it loads without importing sklearn, scipy or the classifier's library."""
        copy = object.__new__(Scorer)
        copy.__dict__.update(self.__dict__)
        copy.bundle = replace(self.bundle, pipeline=cast("Pipeline", DeferredPipeline()))
        copy.predictor = self.predictor.detached()
        return copy

    def bind(self, load_bundle: Callable[[], ModelBundle]) -> None:
        """Where a detached scorer reads its library objects from when it first needs them."""
        pipeline = self.bundle.pipeline
        if isinstance(pipeline, DeferredPipeline):
            pipeline.bind(lambda: load_bundle().pipeline)
            self.predictor.bind(lambda: pipeline.resolve().named_steps["classifier"])

    def set_threads(self, n: int) -> None:
        """Threads for the classifier: 1 for single requests, all cores for batch scoring."""
        self.predictor.set_threads(n)

    def risk_codes(self, probability: np.ndarray) -> np.ndarray:
        """Index into RISK_LEVELS of each probability (0 low, 1 medium, 2 high)."""
        return np.searchsorted(self._bands, probability, side="right")

    def risk_levels(self, probability: np.ndarray) -> np.ndarray:
        return self._levels[self.risk_codes(probability)]

    def _scores(self, matrix: np.ndarray, value_of: Any | None = None) -> Scores:
        """Scores of encoded rows; with `value_of(i, feature)` also the top reasons per row."""
        if value_of is None:
            raw = self.predictor.proba(matrix)
            contributions = None
        else:
            raw, encoded_contributions = self.predictor.proba_and_contributions(matrix)
            contributions = self.encoder.sum_by_feature(encoded_contributions)
        probability = self.bundle.calibrator.apply(raw)
        will_churn = probability >= self.threshold
        confidence = np.where(will_churn, probability, 1.0 - probability)
        reasons = None
        if contributions is not None:
            reasons = self._top_reasons(contributions, value_of)
        return Scores(probability, will_churn, self.risk_levels(probability), confidence, reasons)

    def feature_contributions(self, matrix: np.ndarray) -> np.ndarray:
        """(rows x original features) contribution of each feature to each row's risk."""
        return self.encoder.sum_by_feature(self.predictor.contributions(matrix))

    def _top_reasons(
        self, contributions: np.ndarray, value_of: Any, top: int = TOP_REASONS
    ) -> list[list[Reason]]:
        names = self.encoder.feature_names
        k = min(top, contributions.shape[1])
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
        reasons: list[list[Reason]] = []
        for i, row in enumerate(order):
            picked = [
                Reason(names[j], _plain(value_of(i, names[j])), float(contributions[i, j]))
                for j in row
                if contributions[i, j] > 0
            ]
            reasons.append(picked)
        return reasons

    def score_frame(self, frame: pd.DataFrame, *, reasons: bool = False) -> Scores:
        """Score a validated frame; extra columns (ids, anything else) are ignored."""
        matrix = self.encoder.encode_frame(frame)
        if not reasons:
            return self._scores(matrix)
        columns = {name: frame[name].to_numpy() for name in self.encoder.feature_names}
        return self._scores(matrix, lambda i, name: columns[name][i])

    def score_records(self, records: Records, *, reasons: bool = True) -> Scores:
        """Score plain records (list of dicts or dict of lists) without building a DataFrame."""
        matrix = self.encoder.encode_records(records)
        if not reasons:
            return self._scores(matrix)
        if isinstance(records, Mapping):
            mapping = records

            def value_of(i: int, name: str) -> Any:
                return mapping[name][i] if name in mapping else None
        else:
            rows: Sequence[Mapping[str, Any]] = records

            def value_of(i: int, name: str) -> Any:
                return rows[i].get(name)

        return self._scores(matrix, value_of)

    def score_rows(self, records: Sequence[Mapping[str, Any]]) -> list[RowScore]:
        """Scores with reasons of plain records, as plain Python values (the API's path).

        The same encoder, walk, calibration, threshold, bands and reason ranking as `score_records`
        (tested equal), without the per-call numpy and object overhead that dominated a
        one-customer request.
        """
        matrix = self.encoder.encode_records(records)
        raw, encoded_contributions = self.predictor.proba_and_contributions(matrix)
        contributions = self.encoder.sum_by_feature(encoded_contributions)
        probabilities = self.bundle.calibrator.apply(raw).tolist()
        names = self.encoder.feature_names
        k = min(TOP_REASONS, len(names))
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :k].tolist()
        rows = contributions.tolist()
        threshold = self.threshold
        bands = self._band_edges
        out: list[RowScore] = []
        for record, probability, top, row in zip(records, probabilities, order, rows, strict=True):
            will_churn = probability >= threshold
            reasons = [
                {"feature": names[j], "value": _plain(record.get(names[j])), "contribution": row[j]}
                for j in top
                if row[j] > 0
            ]
            out.append(
                RowScore(
                    probability=probability,
                    will_churn=will_churn,
                    risk_level=RISK_LEVELS[bisect_right(bands, probability)],
                    confidence=probability if will_churn else 1.0 - probability,
                    reasons=reasons,
                )
            )
        return out

    def warm_up(self, record: Mapping[str, Any]) -> None:
        """Pay one-off costs (compiling or loading the tree walk) now, before a user's request
        does. With the walk built ahead of time a request's rows need no numba: the large-input
        walk (numba's, ~90 MB) is then loaded by the first large batch, not by every worker."""
        self.score_rows([record])
        if treewalk_aot.load() is None:
            self.score_rows([record] * RELEASE_GIL_ROWS)

    def predict_frame(self, frame: pd.DataFrame, *, reasons: bool = True) -> pd.DataFrame:
        """The pyfunc output: one row per input row, `reasons` as a JSON list per row."""
        scores = self.score_frame(frame, reasons=reasons)
        out = pd.DataFrame(
            {
                "churn_probability": scores.probability,
                "will_churn": scores.will_churn,
                "risk_level": scores.risk_level.astype(str),
            },
            index=frame.index,
        )
        if scores.reasons is not None:
            out["reasons"] = [json.dumps([r.to_dict() for r in row]) for row in scores.reasons]
        return out

    def pipeline_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Reference path through the sklearn pipeline itself (used by tests and the baseline)."""
        raw = self.bundle.pipeline.predict_proba(frame[self.schema.feature_names])[:, 1]
        return self.bundle.calibrator.apply(raw)
