"""The bundled demo dataset (IBM Telco customer churn) and its column settings."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from churnops.settings import DataSettings, ValidationSettings
from churnops.yamlload import safe_load

DEMO_NAME = "telco_churn"


def demo_path() -> Path:
    """Path of the bundled CSV inside the installed package."""
    return Path(str(resources.files(__package__).joinpath(f"{DEMO_NAME}.csv")))


def demo_data_settings() -> DataSettings:
    """Column settings that describe the bundled table (from its YAML sidecar, not from code)."""
    columns = {k: v for k, v in _sidecar().items() if k != "validation"}
    return DataSettings(path=str(demo_path()), **columns)


def demo_validation_settings(configured: ValidationSettings) -> ValidationSettings:
    """`configured` with the bundled table's own validation column settings (sensitive columns,
    invariant columns, directional expectations and per-column fairness limits) on top."""
    own = _sidecar().get("validation") or {}
    return ValidationSettings.model_validate({**configured.model_dump(), **own})


def _sidecar() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(f"{DEMO_NAME}.yaml").read_text()
    loaded: dict[str, Any] = safe_load(text) or {}
    return loaded
