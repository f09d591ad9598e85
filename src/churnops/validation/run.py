"""The validation use case: every check on one model and its evaluation rows, one result.

`validate_model` takes the model as a `ModelUnderTest` (a predict function, its schema and
threshold), so this package needs no MLflow and no classifier library; `modeling.validate` adapts
a `Scorer` and reads the data and the champion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.data.schema import Schema
from churnops.errors import ConfigError
from churnops.settings import DirectionExpectation, ValidationSettings
from churnops.validation import behaviour, fairness, segments
from churnops.validation.result import CheckResult, CurvePoint, SegmentRow, ValidationResult

BEHAVIOUR_ROWS = 2000  # behaviour checks score copies of this many rows (a sample beyond it)


@dataclass(frozen=True)
class ModelUnderTest:
    """A model as validation sees it: probabilities of a frame, and what it was trained on."""

    label: str
    schema: Schema
    threshold: float
    predict: Callable[[pd.DataFrame], np.ndarray]


def missing_columns(settings: ValidationSettings, columns: list[str]) -> list[str]:
    """Columns the validation settings name that the table does not have."""
    named = [*settings.sensitive_columns, *settings.invariant_columns]
    named += [d.column for d in settings.directions]
    return [c for c in dict.fromkeys(named) if c not in columns]


def check_columns(settings: ValidationSettings, columns: list[str]) -> None:
    """ConfigError naming the first validation column the table lacks (checked before training)."""
    missing = missing_columns(settings, columns)
    if missing:
        raise ConfigError(
            f"validation settings name column {missing[0]!r}, which the table does not have "
            f"(columns: {', '.join(columns[:8])}{', ...' if len(columns) > 8 else ''})"
        )


def validate_model(
    model: ModelUnderTest,
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    settings: ValidationSettings,
    champion: ModelUnderTest | None = None,
    evaluated_on: str = "held-out split",
    seed: int = 0,
    champion_note: str | None = None,
) -> ValidationResult:
    """Segments (against the champion when given, else `champion_note` says why not), fairness
    and behaviour of `model` on `frame`."""
    started = time.perf_counter()
    check_columns(settings, list(frame.columns))
    probability = model.predict(frame)
    rows, weakest, seg_checks = _segments(model, frame, y, probability, settings, champion)
    decision = probability >= model.threshold
    fair = fairness.check_fairness(
        frame,
        y,
        decision,
        columns=settings.sensitive_columns,
        limits=settings.fairness,
        by_column=settings.fairness_by_column,
        min_group_size=settings.min_segment_size,
        bins=settings.numeric_bins,
    )
    behaviour_checks, curves, notes = _behaviour(model, frame, settings, seed)
    result = ValidationResult(
        model=model.label,
        champion=champion.label if champion else None,
        evaluated_on=evaluated_on,
        rows=len(frame),
        checks=[*seg_checks, *fair.checks, *behaviour_checks],
        segments=rows,
        weakest=weakest,
        groups=fair.groups,
        curves=curves,
        blocking=list(settings.blocking),
        allow=list(settings.allow),
        notes=[*fair.notes, *notes],
    )
    if champion is None:
        result.notes.append(champion_note or "no champion to compare segments with")
    result.duration_seconds = round(time.perf_counter() - started, 3)
    return result


def _segments(
    model: ModelUnderTest,
    frame: pd.DataFrame,
    y: np.ndarray,
    probability: np.ndarray,
    settings: ValidationSettings,
    champion: ModelUnderTest | None,
) -> tuple[list[SegmentRow], list[SegmentRow], list[CheckResult]]:
    """Segment rows of the model (with the champion's ROC-AUC beside them), the weakest, and
    the regression checks against the champion."""
    labels = segments.segment_labels(frame, model.schema, bins=settings.numeric_bins)
    sizes = {"min_size": settings.min_segment_size, "min_class_rows": settings.min_class_rows}
    rows = segments.segment_rows(labels, y, probability, threshold=model.threshold, **sizes)
    checks: list[CheckResult] = []
    if champion is not None:
        before = champion.predict(frame)
        theirs = segments.segment_rows(labels, y, before, threshold=champion.threshold, **sizes)
        rows, checks = segments.compare_with_champion(
            labels, y, rows, theirs, (probability, before), margin=settings.segment_margin
        )
    return rows, segments.weakest_segments(rows, settings.weakest), checks


def _unseen_order_values(schema: Schema, expectation: DirectionExpectation) -> list[str]:
    """A note when a configured order holds values the model never saw (scored as unknown)."""
    known = schema.feature(expectation.column).categories
    if expectation.order is None or known is None:
        return []
    unseen = [v for v in expectation.order if str(v) not in {str(k) for k in known}]
    if not unseen:
        return []
    return [f"direction {expectation.column}: {unseen} never seen in training (scored as unknown)"]


def _behaviour(
    model: ModelUnderTest, frame: pd.DataFrame, settings: ValidationSettings, seed: int
) -> tuple[list[CheckResult], list[CurvePoint], list[str]]:
    """Invariance, directions, robustness and edge cases on a sample of the rows."""
    sample = (
        frame.sample(BEHAVIOUR_ROWS, random_state=seed) if len(frame) > BEHAVIOUR_ROWS else frame
    )
    sample = sample.reset_index(drop=True)
    base = model.predict(sample)
    invariant = [c for c in [model.schema.id_column, *settings.invariant_columns] if c]
    checks = behaviour.check_invariance(sample, model.predict, base, columns=invariant)
    curves: list[CurvePoint] = []
    notes: list[str] = []
    for expectation in settings.directions:
        if expectation.column not in model.schema.feature_names:
            notes.append(f"direction {expectation.column}: not a feature of the model, skipped")
            continue
        notes.extend(_unseen_order_values(model.schema, expectation))
        check, curve = behaviour.check_direction(
            sample,
            model.predict,
            expectation,
            grid=settings.direction_grid,
            tolerance=settings.direction_tolerance,
        )
        checks.append(check)
        curves.extend(curve)
    robust = behaviour.check_robustness(
        sample,
        model.predict,
        base,
        model.schema,
        noise=settings.robustness_noise,
        limit=settings.robustness_limit,
        seed=seed,
    )
    checks.extend([robust] if robust else [])
    checks.extend(behaviour.check_edge_cases(sample, model.predict, model.schema))
    return checks, curves, notes
