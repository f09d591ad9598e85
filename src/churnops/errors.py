"""One exception hierarchy; entry points turn it into HTTP 4xx or a one-line CLI error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ChurnopsError(Exception):
    """Base for every error churnops raises on purpose."""


class ConfigError(ChurnopsError):
    """A setting, flag or config file is wrong."""


class DataLoadError(ChurnopsError):
    """A table could not be read."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data: which column, what, and a few example values."""

    column: str | None
    message: str
    examples: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.column}: " if self.column else ""
        shown = f" (e.g. {', '.join(repr(v) for v in self.examples[:5])})" if self.examples else ""
        return f"{where}{self.message}{shown}"


class DataValidationError(ChurnopsError):
    """The data breaks the schema or basic sanity; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} data problem(s):\n{lines}")


class ModelNotFoundError(ChurnopsError):
    """No model at the given URI or alias."""


class RegistryError(ChurnopsError):
    """A registry operation is not possible (unknown version, nothing to roll back to)."""


class StoreError(ChurnopsError):
    """The prediction store cannot be reached or written."""


class RetrainingError(ChurnopsError):
    """A retraining started but could not finish (recorded as a `failed` decision)."""


class DeploymentError(ChurnopsError):
    """A deployment request that cannot be carried out (none running, one already running, ...)."""
