"""Decide which table a run reads and which column settings apply to it."""

from __future__ import annotations

from pathlib import Path

from churnops.datasets import demo_data_settings
from churnops.settings import DataSettings


def _same_source(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def resolve_data_settings(
    configured: DataSettings,
    *,
    path: str | None = None,
    target: str | None = None,
    positive_label: str | None = None,
    id_column: str | None = None,
    exclude: list[str] | None = None,
) -> DataSettings:
    """Column settings for this run.

    Configured column settings describe the configured table only: a `path` naming another table
    starts from empty settings, so one table's id or exclusions never leak into another's run.
    With no table anywhere, the bundled demo table and its own sidecar settings are used.
    """
    if path is not None and not _same_source(path, configured.path):
        base = DataSettings(path=path, max_null_rate=configured.max_null_rate)
    elif configured.path is None and configured.target is None:
        base = demo_data_settings()
        base.max_null_rate = configured.max_null_rate
    else:
        base = configured.model_copy(deep=True)
        if base.path is None:
            base.path = str(demo_data_settings().path)
    updates: dict[str, object] = {}
    if target is not None:
        updates["target"] = target
        if positive_label is None and target != base.target:
            updates["positive_label"] = None
    if positive_label is not None:
        updates["positive_label"] = positive_label
    if id_column is not None:
        updates["id_column"] = id_column or None
    if exclude is not None:
        updates["exclude"] = exclude
    return base.model_copy(update=updates)
