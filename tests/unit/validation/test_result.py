"""The verdict: what blocks, what an override lets through, the JSON round trip, the report."""

from __future__ import annotations

from churnops.validation.report import render_html
from churnops.validation.result import (
    CheckResult,
    ValidationResult,
    blocking_reasons,
)


def _result(allow: list[str]) -> ValidationResult:
    return ValidationResult(
        model="candidate",
        champion="3",
        evaluated_on="held-out split",
        rows=100,
        checks=[
            CheckResult(
                "fairness", "sex demographic_parity_difference", False, 0.3, 0.1, "0.3 > 0.1"
            ),
            CheckResult("direction", "term", True, 0.0, 0.02, "ok"),
            CheckResult("robustness", "noise", False, 0.2, 0.05, "<script>x</script>"),
        ],
        segments=[],
        weakest=[],
        groups=[],
        curves=[],
        blocking=["fairness", "direction"],  # robustness reported, not blocking
        allow=allow,
    )


def test_status_blocking_and_overrides() -> None:
    strict = _result(allow=[])
    assert strict.status == "failed"
    assert [c.check for c in strict.blocking_failures()] == ["fairness"]
    overridden = _result(allow=["fairness"])
    assert overridden.status == "overridden" and overridden.blocking_failures() == []
    assert [c.check for c in overridden.allowed_failures()] == ["fairness"]


def test_json_round_trip_and_reasons_read_back() -> None:
    document = _result(allow=[]).to_dict()
    assert document["status"] == "failed" and len(document["blocking_failures"]) == 1
    again = ValidationResult.from_dict(document)
    assert again.checks == _result(allow=[]).checks
    assert blocking_reasons(document) == ["fairness sex demographic_parity_difference: 0.3 > 0.1"]
    assert blocking_reasons(document, allow=["fairness"]) == []
    assert blocking_reasons(_result(allow=["fairness"]).to_dict()) == []


def test_html_report_names_the_verdict_and_escapes_text() -> None:
    html = render_html(_result(allow=["fairness"]), title="Validation <v3>")
    assert "Validation &lt;v3&gt;" in html and "<script>x" not in html
    assert "overridden" in html and "Allowed by an override" in html
