"""Check a training table without training: what `churnops data check` (and the DVC pipeline's
`validate` stage) reports. Readable, with a usable target, every training-sanity problem listed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from churnops.data.fingerprint import fingerprint
from churnops.data.ingest import read_table
from churnops.data.schema import infer_schema
from churnops.data.validate import validate_training_frame
from churnops.errors import DataValidationError, Problem
from churnops.redact import redact_url
from churnops.settings import DataSettings


@dataclass
class DataCheck:
    """The verdict on one table; `problems` empty means it can be trained on."""

    source: str
    rows: int
    columns: int
    fingerprint: str
    target: str | None = None
    positive_label: str | None = None
    positive_rate: float | None = None
    features: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "rows": self.rows,
            "columns": self.columns,
            "fingerprint": self.fingerprint,
            "target": self.target,
            "positive_label": self.positive_label,
            "positive_rate": self.positive_rate,
            "features": self.features,
            "problems": [str(p) for p in self.problems],
        }


def check_table(settings: DataSettings) -> DataCheck:
    """Read and check the table `settings` name; a table that cannot be read raises."""
    if settings.path is None:
        raise ValueError("no data path resolved (resolve_data_settings first)")
    frame = read_table(settings.path)
    result = DataCheck(
        source=redact_url(settings.path) if "://" in settings.path else settings.path,
        rows=len(frame),
        columns=len(frame.columns),
        fingerprint=fingerprint(frame),
    )
    try:
        schema = infer_schema(frame, settings)
    except DataValidationError as exc:
        result.problems = list(exc.problems)
        return result
    result.target, result.positive_label = schema.target, schema.positive_label
    result.positive_rate = schema.positive_rate
    result.features = schema.feature_names
    try:
        validate_training_frame(frame, schema, settings)
    except DataValidationError as exc:
        result.problems = list(exc.problems)
    return result
