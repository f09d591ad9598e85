"""`churnops verify`: rebuild a registered version from its lineage manifest and compare.

The recorded table is read again and must have the recorded fingerprint (`modeling.rebuild`),
then the training stages run again with the recorded settings, seed and trial counts (a run the
time budget cut short replays exactly the trials it made), nothing logged or registered. The
rebuilt winner must be the same candidate with the same parameters, its metrics within
`tolerance` of the version's, and its probabilities on a fixed sample (the first rows of the
held-out split) within `probability_tolerance` of the registered model's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from churnops.modeling import stages
from churnops.modeling.rebuild import RecordedRun, ReproductionError

if TYPE_CHECKING:
    from churnops.modeling.scorer import ModelBundle

SAMPLE_ROWS = 500
METRIC_TOLERANCE = 1e-6
PROBABILITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Check:
    """One comparison: what, whether it held, and the values when it did not."""

    name: str
    passed: bool
    detail: str = ""


@dataclass
class VerifyOutcome:
    model_name: str
    version: str
    run_id: str
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    sample_rows: int = 0
    max_probability_difference: float = 0.0
    duration_seconds: float = 0.0

    @property
    def reproduced(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def first_difference(self) -> str | None:
        failed = next((c for c in self.checks if not c.passed), None)
        return None if failed is None else f"{failed.name}: {failed.detail}"

    @property
    def exit_code(self) -> int:
        """0 reproduced, 1 not (`cannot try` is a ReproductionError, exit 2 in the CLI)."""
        return 0 if self.reproduced else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "reproduced": self.reproduced,
            "first_difference": self.first_difference,
            "checks": [asdict(c) for c in self.checks],
            "notes": self.notes,
            "sample_rows": self.sample_rows,
            "max_probability_difference": self.max_probability_difference,
            "duration_seconds": round(self.duration_seconds, 2),
        }


def rebuild_selection(
    recorded: RecordedRun, *, on_stage: Callable[[str], None] | None = None
) -> tuple[stages.Selection, stages.Split]:
    """The training stages again, as `run_training` calls them, with nothing logged."""
    say = on_stage or (lambda _: None)
    training, schema = recorded.training, recorded.schema
    split = recorded.split()
    say("leakage check")
    leakage = stages.check_leakage(
        split, schema, limit=training.leakage_feature_auc, seed=training.seed
    )
    say("encoding CV folds")
    folds = stages.encode_cv_folds(split, schema, folds=training.cv_folds, seed=training.seed)
    results = []
    for name in training.candidates:
        record = recorded.manifest.tuning.get(name)
        say(f"tuning {name} ({record.n_trials if record else 'all'} trials)")
        results.append(
            stages.tune_candidate(
                name,
                split,
                folds,
                schema,
                training=training,
                business=recorded.business,
                deadline=math.inf,  # the recorded trial count, never the clock, stops it
                max_trials=record.n_trials if record else None,
            )
        )
    selection = stages.select_winner(results, leakage.flags, model_limit=training.leakage_model_auc)
    return selection, split


def _close(a: float, b: float, tolerance: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance


def compare_metrics(
    recorded: dict[str, dict[str, float]],
    rebuilt: dict[str, dict[str, float]],
    *,
    tolerance: float,
) -> Check:
    """The version's cv_* and test_* metrics against the rebuilt winner's."""
    for part in ("cv", "test"):
        for key, value in recorded.get(part, {}).items():
            other = rebuilt.get(part, {}).get(key)
            if other is None or not _close(float(value), float(other), tolerance):
                return Check(
                    "metrics", False, f"{part}_{key} recorded {value!r}, rebuilt {other!r}"
                )
    return Check("metrics", True, f"cv and test metrics within {tolerance:g}")


def compare_probabilities(
    recorded: np.ndarray, rebuilt: np.ndarray, *, tolerance: float, index: list[Any]
) -> tuple[Check, float]:
    """The two models' probabilities on the same rows; the first row that differs, if any."""
    difference = np.abs(np.asarray(recorded, dtype=float) - np.asarray(rebuilt, dtype=float))
    worst = float(difference.max()) if len(difference) else 0.0
    bad = np.flatnonzero(difference > tolerance)
    if len(bad):
        i = int(bad[0])
        return (
            Check(
                "probabilities",
                False,
                f"held-out row {index[i]}: registered {float(recorded[i])!r}, "
                f"rebuilt {float(rebuilt[i])!r} "
                f"({len(bad)} of {len(difference)} rows differ by more than {tolerance:g})",
            ),
            worst,
        )
    return Check(
        "probabilities", True, f"{len(difference)} rows, largest difference {worst:.3g}"
    ), worst


def _same(name: str, recorded: Any, rebuilt: Any) -> Check:
    a, b = json.dumps(recorded, sort_keys=True), json.dumps(rebuilt, sort_keys=True)
    if a == b:
        return Check(name, True)
    return Check(name, False, f"recorded {a}, rebuilt {b}")


def environment_notes(recorded: RecordedRun) -> list[str]:
    """What differs between the recording and this machine without failing the check."""
    from churnops.modeling.lineage import code_state, library_versions

    manifest = recorded.manifest
    notes: list[str] = []
    if not manifest.repeatable:
        cut = ", ".join(
            f"{name} {t.n_trials} of {t.max_trials} trials"
            for name, t in manifest.tuning.items()
            if t.truncated
        )
        notes.append(
            f"tuning was cut short by the time budget ({cut}); rebuilt with the recorded trial "
            "counts (a plain retrain may tune further and differ)"
        )
    here = library_versions()
    moved = [
        f"{lib} {version} recorded, {here.get(lib, 'absent')} here"
        for lib, version in manifest.libraries.items()
        if here.get(lib) != version
    ]
    if moved:
        notes.append("library versions differ: " + "; ".join(moved))
    code = code_state()
    if manifest.code.get("git_commit") != code["git_commit"]:
        notes.append(
            f"trained at commit {manifest.code.get('git_commit')}, verifying at {code['git_commit']}"
        )
    if manifest.code.get("git_dirty"):
        notes.append("the training checkout had uncommitted changes (git_dirty)")
    return notes


def verify_version(
    recorded: RecordedRun,
    registered: ModelBundle,
    *,
    tolerance: float = METRIC_TOLERANCE,
    probability_tolerance: float = PROBABILITY_TOLERANCE,
    sample_rows: int = SAMPLE_ROWS,
    on_stage: Callable[[str], None] | None = None,
) -> VerifyOutcome:
    """Rebuild `recorded` and compare it with the registered bundle (see the module doc)."""
    from churnops.modeling.scorer import Scorer

    started = time.monotonic()
    notes = environment_notes(recorded)
    selection, split = rebuild_selection(recorded, on_stage=on_stage)
    winner = selection.winner
    schema_check = _same("schema", registered.schema.to_yaml(), recorded.schema.to_yaml())
    same_winner = _same("winner", registered.candidate, winner.name)
    checks = [
        Check("schema", True, f"{len(recorded.schema.features)} features")
        if schema_check.passed
        else Check("schema", False, "the rebuilt table's schema differs from the model's"),
        same_winner,
        _same("parameters", registered.params, winner.params),
        _same("calibration", registered.calibrator.method, winner.calibration),
        Check(
            "threshold",
            _close(registered.threshold, winner.threshold, tolerance),
            f"recorded {registered.threshold!r}, rebuilt {winner.threshold!r}",
        ),
        compare_metrics(
            registered.metrics, {"cv": winner.cv, "test": winner.test}, tolerance=tolerance
        ),
    ]
    sample, worst = split.test.head(sample_rows), math.inf
    if same_winner.passed:  # probabilities of two different model kinds say nothing more
        if on_stage is not None:
            on_stage("scoring the sample")
        packaged = stages.package_bundle(
            selection,
            split,
            recorded.schema,
            risk_bands=recorded.risk_bands,
            data_fingerprint=recorded.manifest.data_fingerprint,
        )
        check, worst = compare_probabilities(
            Scorer(registered).score_frame(sample).probability,
            Scorer(packaged.bundle).score_frame(sample).probability,
            tolerance=probability_tolerance,
            index=list(sample.index),
        )
        checks.append(check)
    return VerifyOutcome(
        model_name=recorded.model_name,
        version=recorded.version,
        run_id=recorded.run_id,
        checks=checks,
        notes=notes,
        sample_rows=len(sample),
        max_probability_difference=worst,
        duration_seconds=time.monotonic() - started,
    )


__all__ = ["ReproductionError", "VerifyOutcome", "verify_version"]
