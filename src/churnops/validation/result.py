"""What a validation run found: one `CheckResult` per judged thing, and the whole `ValidationResult`.

The JSON form (`to_dict` / `from_dict`) is what the MLflow run keeps and what the gates read back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

STATUS_PASSED = "passed"
STATUS_FAILED = "failed"  # a blocking check failed and was not allowed
STATUS_OVERRIDDEN = "overridden"  # blocking checks failed, every one of them allowed


@dataclass(frozen=True)
class CheckResult:
    """One judged thing: a check (`fairness`, `direction`, ...) on one subject (a column, a
    segment), its measured value against its limit."""

    check: str
    subject: str
    passed: bool
    value: float | None
    limit: float | None
    detail: str

    def __str__(self) -> str:
        return f"{self.check} {self.subject}: {self.detail}"


@dataclass(frozen=True)
class SegmentRow:
    """Quality on one segment (`column = value` or a numeric bin) of the evaluation rows."""

    column: str
    segment: str
    rows: int
    positives: int
    roc_auc: float | None  # None: too few churners or stayers to rank
    recall: float | None
    calibration_gap: float  # |mean predicted probability - observed churn rate|
    champion_roc_auc: float | None = None


@dataclass(frozen=True)
class GroupRow:
    """One group of a sensitive column: its size and the decision rates fairness compares."""

    column: str
    group: str
    rows: int
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None


@dataclass(frozen=True)
class CurvePoint:
    """Mean probability with every evaluation row set to one value of a directional column."""

    column: str
    value: str
    mean_probability: float


@dataclass
class ValidationResult:
    """Everything one validation run found, and which failures block a promotion."""

    model: str  # what was validated ("candidate", "v3")
    champion: str | None  # the champion version compared with, None when there was none
    evaluated_on: str  # which rows: the held-out split, or a named table
    rows: int
    checks: list[CheckResult]
    segments: list[SegmentRow]
    weakest: list[SegmentRow]
    groups: list[GroupRow]
    curves: list[CurvePoint]
    blocking: list[str]  # check names that stop a promotion when they fail
    allow: list[str]  # blocking check names allowed to fail (recorded overrides)
    notes: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def blocking_failures(self) -> list[CheckResult]:
        """Failed checks that block and were not allowed."""
        return blocking_failures(self.failures(), blocking=self.blocking, allow=self.allow)

    def allowed_failures(self) -> list[CheckResult]:
        """Failed blocking checks that an `--allow` override lets through."""
        return [c for c in self.failures() if c.check in self.blocking and c.check in self.allow]

    @property
    def status(self) -> str:
        if self.blocking_failures():
            return STATUS_FAILED
        return STATUS_OVERRIDDEN if self.allowed_failures() else STATUS_PASSED

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        out["blocking_failures"] = [str(c) for c in self.blocking_failures()]
        out["allowed_failures"] = [str(c) for c in self.allowed_failures()]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        return cls(
            model=data["model"],
            champion=data.get("champion"),
            evaluated_on=data.get("evaluated_on", ""),
            rows=int(data.get("rows", 0)),
            checks=[CheckResult(**c) for c in data.get("checks", [])],
            segments=[SegmentRow(**s) for s in data.get("segments", [])],
            weakest=[SegmentRow(**s) for s in data.get("weakest", [])],
            groups=[GroupRow(**g) for g in data.get("groups", [])],
            curves=[CurvePoint(**p) for p in data.get("curves", [])],
            blocking=list(data.get("blocking", [])),
            allow=list(data.get("allow", [])),
            notes=list(data.get("notes", [])),
            duration_seconds=float(data.get("duration_seconds", 0.0)),
        )


def blocking_failures(
    failures: Collection[CheckResult], *, blocking: Collection[str], allow: Collection[str]
) -> list[CheckResult]:
    """The failures whose check blocks a promotion and is not allowed to fail."""
    return [c for c in failures if c.check in blocking and c.check not in allow]


def blocking_reasons(document: dict[str, Any], *, allow: Collection[str] = ()) -> list[str]:
    """One line per blocking failure of a logged validation document (its JSON form), with
    `allow` added to the overrides it was logged with; empty when nothing blocks."""
    result = ValidationResult.from_dict(document)
    failures = blocking_failures(
        result.failures(), blocking=result.blocking, allow={*result.allow, *allow}
    )
    return [str(c) for c in failures]
