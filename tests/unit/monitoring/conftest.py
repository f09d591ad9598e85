"""Fixtures: a 7,000-row synthetic reference with calibrated scores."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.monitoring.reference import MonitoringReference
from churnops.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import build_reference, make_customers


@pytest.fixture(scope="session")
def reference_frame() -> pd.DataFrame:
    return make_customers(7_000, seed=1)


@pytest.fixture(scope="session")
def reference(reference_frame: pd.DataFrame) -> MonitoringReference:
    return build_reference(reference_frame)


@pytest.fixture
def settings() -> MonitoringSettings:
    return MonitoringSettings()
