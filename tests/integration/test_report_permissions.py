"""Files a training run leaves for people and for the MLflow UI are readable as the umask says."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from churnops.modeling.runlog import log_eda
from churnops.reporting.eda import write_eda_report
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_the_logged_eda_report_is_readable_by_the_mlflow_server(
    trained_model: TrainedModel,
) -> None:
    """The report is logged as a run artifact with its mode copied: written 0600, an MLflow
    server running as another user could not show it."""
    client = trained_model.client
    run = client.create_run(client.get_run(trained_model.outcome.run_id).info.experiment_id)
    frame = trained_model.frame.head(300)
    log_eda(
        client,
        run.info.run_id,
        frame,
        trained_model.outcome.schema,
        eda_writer=lambda frame, schema, path, digest: write_eda_report(
            frame, schema, path, fingerprint=digest
        ),
        data_fingerprint="f" * 64,
    )
    client.set_terminated(run.info.run_id)
    artifacts = Path(unquote(urlparse(run.info.artifact_uri).path))
    report = artifacts / "eda" / "eda.html"
    assert report.is_file()
    assert stat.S_IMODE(report.stat().st_mode) == 0o666 & ~_umask()
    assert _umask() & 0o004 or report.stat().st_mode & stat.S_IROTH
