"""The MLflow tracking and registry backend on the real local PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from churnops.data.load import load_training_table
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.registry import alias_version
from churnops.modeling.tracking import configure_tracking, ensure_experiment
from churnops.modeling.train import run_training
from tests.support.models import make_settings
from tests.support.services import postgres_base_url, require_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # trains into Postgres
ADMIN_URL = postgres_base_url()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A throwaway database on the local server, dropped afterwards."""
    name = f"churnops_mlflow_{uuid.uuid4().hex[:8]}"
    require_postgres(ADMIN_URL)
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_train_register_and_load_on_postgres(tmp_path, postgres_database: str) -> None:
    settings = make_settings(tmp_path, candidates=["logistic_regression"])
    settings.tracking_uri = postgres_database
    client = configure_tracking(settings)
    experiment_id = ensure_experiment(client, settings)
    frame, schema = load_training_table(settings.data)
    outcome = run_training(
        frame, schema=schema, settings=settings, client=client, experiment_id=experiment_id
    )
    assert outcome.promoted
    champion = alias_version(client, settings.registry.model_name, "champion")
    assert champion is not None and str(champion.version) == outcome.version
    scorer, _ = load_scorer(f"models:/{settings.registry.model_name}@champion")
    assert scorer.score_frame(frame.head(10)).probability.shape == (10,)
    with sa.create_engine(postgres_database).connect() as conn:
        stored = conn.execute(sa.text("select count(*) from registered_models")).scalar_one()
    assert stored == 1
