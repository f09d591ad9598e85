"""`churnops validate VERSION`: validation re-run for any registered version on a table.

The version's own training rows are told apart: when the table is the one it was trained on (same
fingerprint), the held-out split is rebuilt with the run's seed and test size, so the checks see
only rows the model never learnt from; any other table is used whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnops.data.fingerprint import fingerprint
from churnops.data.schema import Schema, target_vector
from churnops.errors import DataValidationError, Problem, RegistryError
from churnops.modeling.stages import split_data
from churnops.modeling.validate import champion_under_test, scorer_under_test
from churnops.settings import ValidationSettings
from churnops.validation.report import write_html, write_json
from churnops.validation.result import STATUS_FAILED, ValidationResult
from churnops.validation.run import validate_model

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

EXIT_PASSED, EXIT_BLOCKED = 0, 1


@dataclass(frozen=True)
class VersionValidation:
    """A re-run's result, where its reports went, and the command's exit code."""

    version: str
    result: ValidationResult
    json_path: Path
    html_path: Path

    @property
    def exit_code(self) -> int:
        return EXIT_BLOCKED if self.result.status == STATUS_FAILED else EXIT_PASSED


@dataclass(frozen=True)
class EvaluationRows:
    frame: pd.DataFrame
    y: np.ndarray
    described: str
    seed: int  # the training run's (behaviour checks sample and perturb with it)


def validate_version(
    client: MlflowClient,
    *,
    model_name: str,
    version: str,
    frame: pd.DataFrame,
    table_name: str,
    settings: ValidationSettings,
    output_dir: Path,
) -> VersionValidation:
    """Validate registered `version` on `frame` against the current champion; write the reports."""
    from churnops.modeling.pyfunc import load_scorer

    registered = _version(client, model_name, version)
    scorer, _ = load_scorer(f"models:/{model_name}/{registered.version}")
    _check_table(frame, scorer.schema, table_name)
    rows = evaluation_rows(client, registered, frame, scorer.schema, table_name)
    champion, why_not = champion_under_test(
        client, model_name=model_name, columns=list(rows.frame.columns), skip_version=version
    )
    result = validate_model(
        scorer_under_test(scorer, f"v{version}"),
        rows.frame,
        rows.y,
        settings=settings,
        champion=champion,
        champion_note=why_not,
        evaluated_on=rows.described,
        seed=rows.seed,
    )
    stem = output_dir / f"validation-{model_name}-v{version}"
    title = f"Validation of {model_name} v{version}"
    html = write_html(result, stem.with_suffix(".html"), title=title)
    return VersionValidation(version, result, write_json(result, stem.with_suffix(".json")), html)


def _version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {model_name!r} has no version {version}") from exc


def _check_table(frame: pd.DataFrame, schema: Schema, table_name: str) -> None:
    """The table must hold the target (validation needs outcomes) and every feature."""
    missing = [c for c in [schema.target, *schema.feature_names] if c not in frame.columns]
    if missing:
        raise DataValidationError(
            [Problem(c, f"missing from {table_name} (the model needs it)") for c in missing]
        )


def evaluation_rows(
    client: MlflowClient,
    registered: ModelVersion,
    frame: pd.DataFrame,
    schema: Schema,
    table_name: str,
) -> EvaluationRows:
    """The held-out split when `frame` is the version's training table, else the whole table."""
    params = client.get_run(registered.run_id).data.params if registered.run_id else {}
    seed = int(params.get("seed", 42))
    trained_on = registered.tags.get("churnops.data_fingerprint")
    if "test_size" in params and fingerprint(frame) == trained_on:
        split = split_data(frame, schema, test_size=float(params["test_size"]), seed=seed)
        described = "held-out split of its training table"
        return EvaluationRows(split.test, split.y_test, described, seed)
    whole = frame.reset_index(drop=True)
    return EvaluationRows(whole, target_vector(whole, schema), f"all rows of {table_name}", seed)
