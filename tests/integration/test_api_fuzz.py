"""Fuzz the live server from its own OpenAPI schema (schemathesis): no input may cause a 5xx."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from churnops.api.app import create_app
from tests.support.api import api_settings, live_server
from tests.support.models import TrainedModel
from tests.support.services import require_module

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 40
TIME_BUDGET_SECONDS = 60.0


def test_fuzz_no_server_errors(trained_model: TrainedModel, tmp_path: Path) -> None:
    schemathesis = require_module("schemathesis")
    from schemathesis.generation import GenerationMode

    app = create_app(api_settings(trained_model, tmp_path, max_batch_size=20))
    with live_server(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/feedback"}
        strategies = [
            op.as_strategy(generation_mode=mode)
            for op in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
        deadline = time.monotonic() + TIME_BUDGET_SECONDS
        seen: dict[int, int] = {}

        @settings(
            max_examples=EXAMPLES_PER_OPERATION * len(strategies),
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=st.one_of(strategies))
        def run(case: object) -> None:
            if time.monotonic() > deadline:
                return
            response = case.call(base_url=url, timeout=10)  # type: ignore[attr-defined]
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (
                f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"  # type: ignore[attr-defined]
            )

        run()
        assert sum(seen.values()) > 50
        assert any(200 <= status < 300 for status in seen)
        assert any(400 <= status < 500 for status in seen)
