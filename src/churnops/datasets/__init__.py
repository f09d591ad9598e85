"""The bundled demo dataset (IBM Telco customer churn) and its column settings."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from churnops.settings import DataSettings

DEMO_NAME = "telco_churn"


def demo_path() -> Path:
    """Path of the bundled CSV inside the installed package."""
    return Path(str(resources.files(__package__).joinpath(f"{DEMO_NAME}.csv")))


def demo_data_settings() -> DataSettings:
    """Column settings that describe the bundled table (from its YAML sidecar, not from code)."""
    sidecar = resources.files(__package__).joinpath(f"{DEMO_NAME}.yaml").read_text()
    return DataSettings(path=str(demo_path()), **yaml.safe_load(sidecar))
