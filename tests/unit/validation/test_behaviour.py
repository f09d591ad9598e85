"""Behaviour checks on hand-written models: what each check catches, and what it lets pass."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.data.schema import Schema, infer_schema
from churnops.settings import DataSettings, DirectionExpectation
from churnops.validation.behaviour import (
    UNSEEN,
    check_direction,
    check_edge_cases,
    check_invariance,
    check_robustness,
    edge_cases,
)

TERMS = ["monthly", "yearly", "biennial"]


def _frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "cid": [f"C{i}" for i in range(n)],
            "term": rng.choice(TERMS, n),
            "months": rng.integers(0, 72, n),
            "flag": rng.integers(0, 2, n),
            "churn": rng.choice(["Yes", "No"], n),
        }
    )


def _schema(frame: pd.DataFrame) -> Schema:
    return infer_schema(frame, DataSettings(target="churn", positive_label="Yes", id_column="cid"))


def sensible(frame: pd.DataFrame) -> np.ndarray:
    """Risk falls along the term order and with months; ignores the id."""
    term = frame["term"].map({t: i for i, t in enumerate(TERMS)}).fillna(0).to_numpy(dtype=float)
    months = pd.to_numeric(frame["months"], errors="coerce").fillna(0).to_numpy(dtype=float)
    return 1 / (1 + np.exp(-(1.0 - 0.8 * term - 0.03 * months)))


def test_invariance_catches_a_model_reading_the_id() -> None:
    frame = _frame()
    reads_id = lambda f: sensible(f) + f["cid"].str.len().to_numpy() * 1e-3  # noqa: E731
    ok = check_invariance(frame, sensible, sensible(frame), columns=["cid"])
    bad = check_invariance(frame, reads_id, reads_id(frame), columns=["cid", "absent"])
    assert ok[0].passed and ok[0].value == 0.0
    assert len(bad) == 1 and not bad[0].passed  # the absent column is skipped


def test_a_planted_directional_violation_is_caught() -> None:
    frame = _frame()
    expect = DirectionExpectation(column="term", risk="decreasing", order=TERMS)
    check, curve = check_direction(frame, sensible, expect, grid=10, tolerance=0.02)
    assert check.passed and [p.value for p in curve] == TERMS

    def inverted(f: pd.DataFrame) -> np.ndarray:  # biennial customers made the riskiest
        swapped = f.assign(
            term=f["term"].map({"monthly": "biennial", "biennial": "monthly", "yearly": "yearly"})
        )
        return sensible(swapped)

    check, curve = check_direction(frame, inverted, expect, grid=10, tolerance=0.02)
    assert not check.passed and check.value > 0.1
    assert curve[-1].mean_probability > curve[0].mean_probability


def test_numeric_direction_uses_quantiles_and_tolerates_small_bumps() -> None:
    frame = _frame()
    expect = DirectionExpectation(column="months", risk="decreasing")
    bumpy = lambda f: sensible(f) + 0.01 * np.sin(pd.to_numeric(f["months"]).to_numpy())  # noqa: E731
    check, curve = check_direction(frame, bumpy, expect, grid=10, tolerance=0.02)
    assert check.passed and len(curve) == 11
    rising = DirectionExpectation(column="months", risk="increasing")
    check, _ = check_direction(frame, sensible, rising, grid=10, tolerance=0.02)
    assert not check.passed


def test_robustness_flags_a_model_that_jumps_on_noise() -> None:
    frame = _frame()
    schema = _schema(frame)
    calm = check_robustness(
        frame, sensible, sensible(frame), schema, noise=0.05, limit=0.05, seed=0
    )
    assert calm is not None and calm.passed

    def jumpy(f: pd.DataFrame) -> np.ndarray:  # any fractional month flips the score
        months = pd.to_numeric(f["months"]).to_numpy(dtype=float)
        return np.where(months == np.round(months), 0.1, 0.9)

    jumped = check_robustness(frame, jumpy, jumpy(frame), schema, noise=0.05, limit=0.05, seed=0)
    # rows clipped to the trained minimum or maximum stay whole months
    assert jumped is not None and not jumped.passed and 0.7 < (jumped.value or 0) <= 0.8


def test_edge_cases_are_built_from_the_schema_and_errors_are_reported() -> None:
    frame = _frame()
    schema = _schema(frame)
    cases = {c.name: c.frame for c in edge_cases(frame, schema)}
    assert set(cases) == {"missing values", "extreme in-range values", "unknown categories"}
    assert cases["missing values"]["term"].isna().any()
    assert set(cases["extreme in-range values"]["months"]) >= {0, 71}
    assert (cases["unknown categories"]["term"] == UNSEEN).any()
    assert all(c.passed for c in check_edge_cases(frame, sensible, schema))

    def strict(f: pd.DataFrame) -> np.ndarray:
        if f["term"].isna().any():
            raise ValueError("term is required")
        return sensible(f)

    verdict = {c.subject: c for c in check_edge_cases(frame, strict, schema)}
    assert not verdict["missing values"].passed
    assert "ValueError: term is required" in verdict["missing values"].detail
    assert verdict["unknown categories"].passed


def test_validate_model_notes_order_values_the_model_never_saw() -> None:
    from churnops.settings import ValidationSettings
    from churnops.validation.run import ModelUnderTest, validate_model

    frame = _frame(400)
    y = (frame["churn"] == "Yes").to_numpy().astype(int)
    model = ModelUnderTest("toy", _schema(frame), 0.5, sensible)
    expect = DirectionExpectation(column="term", risk="decreasing", order=[*TERMS, "decennial"])
    result = validate_model(
        model, frame, y, settings=ValidationSettings(directions=[expect], min_segment_size=50)
    )
    assert any("['decennial'] never seen in training" in n for n in result.notes)
    # The toy model scores an unknown term as "monthly": risk jumps back up at the end.
    assert [c.subject for c in result.failures()] == ["term"] and result.rows == 400
