"""Validation for registered models: a `Scorer` as a `ModelUnderTest`, the champion to compare
with, and the logged result read back (what the promotion and production gates decide on)."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.modeling.registry import CHAMPION, alias_version
from churnops.modeling.scorer import Scorer
from churnops.validation.result import blocking_reasons
from churnops.validation.run import ModelUnderTest

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

RESULT_ARTIFACT = "validation/result.json"  # on the training run; the gates read it back
REPORT_ARTIFACT = "validation/report.html"


def scorer_under_test(scorer: Scorer, label: str) -> ModelUnderTest:
    """The scorer every consumer uses, seen by validation (probabilities of a frame)."""
    return ModelUnderTest(
        label=label,
        schema=scorer.schema,
        threshold=scorer.threshold,
        predict=lambda frame: scorer.score_frame(frame).probability,
    )


def champion_under_test(
    client: MlflowClient, *, model_name: str, columns: Collection[str], skip_version: str = ""
) -> tuple[ModelUnderTest | None, str | None]:
    """The current champion (labelled by its version) and None, or None and why it cannot be
    compared: there is none, it is `skip_version`, or it needs columns this table lacks."""
    from churnops.modeling.pyfunc import load_scorer

    current = alias_version(client, model_name, CHAMPION)
    if current is None:
        return None, None
    version = str(current.version)
    if version == skip_version:
        return None, f"v{version} is the champion itself: no segment comparison"
    try:
        scorer, _ = load_scorer(f"models:/{model_name}/{version}")
    except Exception as exc:  # an unloadable champion must not stop validating the candidate
        return None, f"champion v{version} could not be loaded: {exc}"
    missing = [c for c in scorer.schema.feature_names if c not in columns]
    if missing:
        return None, f"champion v{version} needs columns missing here: {missing[:5]}"
    return scorer_under_test(scorer, version), None


def logged_validation(client: MlflowClient, run_id: str) -> dict[str, Any] | None:
    """The validation document logged on a training run, or None when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, RESULT_ARTIFACT, tmp)
        except Exception as exc:  # no such artifact (validation off, or an older run)
            logger.debug("no validation result on run %s: %s", run_id, exc)
            return None
        loaded: dict[str, Any] = json.loads(Path(local).read_text())
        return loaded


def validation_blockers(
    client: MlflowClient, *, model_name: str, version: str, allow: Collection[str] = ()
) -> list[str]:
    """Why `version` must not be deployed according to the validation logged when it was
    trained: one line per failed blocking check not allowed (by the overrides recorded with the
    run, or by `allow`); a version with no logged validation gets one line saying so. Empty: no
    objection. For the retraining loop's gate; the training gate decides on the same result held
    in memory (`stages.promotion_gate`)."""
    run_id = client.get_model_version(model_name, version).run_id
    document = logged_validation(client, run_id) if run_id else None
    if document is None:
        return [f"no validation result logged for {model_name} v{version}"]
    return blocking_reasons(document, allow=allow)
