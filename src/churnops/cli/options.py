"""Options shared by several commands, and turning them into Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from churnops.data.sources import reader_kind, resolve_data_settings, resolve_validation_settings
from churnops.settings import Settings, apply_overrides, get_settings

ConfigOption = typer.Option(
    None, "--config", "-c", help="params.yaml to read (default ./params.yaml)."
)
DataOption = typer.Option(
    None, "--data", "-d", help="Table: CSV/XLSX/Parquet/JSONL or SQLAlchemy URL#table."
)
TargetOption = typer.Option(None, "--target", help="Target column (binary).")
PositiveOption = typer.Option(None, "--positive-label", help="Target value that counts as churn.")
IdOption = typer.Option(None, "--id-column", help="Customer id column (never a feature).")
ExcludeOption = typer.Option(None, "--exclude", help="Column to leave out (repeatable).")
ModelNameOption = typer.Option(
    None, "--model-name", help="Registered model name (default registry.model_name)."
)


DATA_FLAGS = {
    "data.path": "--data",
    "data.target": "--target",
    "data.positive_label": "--positive-label",
    "data.id_column": "--id-column",
    "data.exclude": "--exclude",
}


def settings_for_data(
    config: Path | None,
    *,
    data: str | None,
    target: str | None,
    positive_label: str | None,
    id_column: str | None,
    exclude: list[str] | None,
    flags: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings with the table options (and any other dotted `overrides`) applied and validated,
    and the table checked to exist before anything heavy is imported."""
    settings = get_settings(config, flags=flags, **overrides)
    resolved = resolve_data_settings(
        settings.data,
        path=data,
        target=target,
        positive_label=positive_label,
        id_column=id_column,
        exclude=exclude or None,
    )
    settings = apply_overrides(settings, {"data": resolved.model_dump()}, flags=DATA_FLAGS)
    validation = resolve_validation_settings(settings.validation, settings.data)
    settings = apply_overrides(settings, {"validation": validation.model_dump()})
    if settings.data.path is not None:
        reader_kind(settings.data.path)
    return settings
