"""The lineage manifest: what it records, that secrets stay out, that an edit is noticed; and
the pure comparisons `churnops verify` makes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churnops.modeling.lineage import (
    LineageManifest,
    ProductionRows,
    TrialRecord,
    build_manifest,
    data_sources,
    version_tags,
)
from churnops.modeling.verify import compare_metrics, compare_probabilities
from churnops.redact import REDACTED, redact_settings, redact_url
from churnops.settings import Settings


def settings_with_secrets() -> Settings:
    settings = Settings(
        database_url="postgresql+psycopg://app:s3cret@db:5432/churn",
        tracking_uri="http://mlflow:5000",
    )
    settings.app.api_key = "plain-key"
    settings.serving.api_key_hashes = ["salt$hash"]
    settings.monitoring.webhook_url = "https://hooks.example.com/T000/B000/XXXX"
    settings.data.path = "postgresql://reader:pw@db/churn#customers"
    settings.data.target = "churn"
    return settings


def manifest(**changes: object) -> LineageManifest:
    frame = pd.DataFrame({"a": [1, 2, 3], "churn": ["yes", "no", "yes"]})
    built = build_manifest(
        frame,
        settings=settings_with_secrets(),
        data_fingerprint="f" * 64,
        tuning={"xgboost": TrialRecord(n_trials=3, max_trials=12, truncated=True)},
    )
    return LineageManifest.from_dict({**built.to_dict(), **changes})


def test_secrets_never_reach_the_manifest() -> None:
    recorded = manifest()
    text = recorded.to_json()
    for secret in ("s3cret", "plain-key", "salt$hash", "T000/B000", ":pw@"):
        assert secret not in text
    assert recorded.settings["database_url"] == f"postgresql+psycopg://app:{REDACTED}@db:5432/churn"
    assert recorded.settings["app"]["api_key"] == REDACTED
    assert recorded.settings["serving"]["api_key_hashes"] == REDACTED
    assert recorded.settings["training"]["seed"] == 42, "everything else as resolved"
    assert recorded.sources[0].uri == f"postgresql://reader:{REDACTED}@db/churn#customers"


def test_redaction_leaves_empty_and_plain_values() -> None:
    values = {"api_key": None, "webhook_url": "", "tracking_uri": "sqlite:///x.db", "n": 3}
    assert redact_settings(values) == values
    assert redact_url("sqlite:////abs/path.db") == "sqlite:////abs/path.db"


def test_manifest_records_code_libraries_seeds_and_platform() -> None:
    recorded = manifest()
    assert recorded.code["package_version"] and recorded.code["package"] == "churnops"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", recorded.code["git_commit"])
    assert recorded.code["git_dirty"] in (True, False, None)
    assert {"numpy", "pandas", "scikit-learn", "python"} <= set(recorded.libraries)
    assert set(recorded.seeds.values()) == {42}
    assert recorded.platform["n_jobs"] == 2 and recorded.platform["cpu_count"]
    assert recorded.data_rows == 3 and recorded.sources[0].rows == 3
    assert recorded.repeatable is False, "a truncated candidate makes the run non-repeatable"


def test_digest_is_stable_and_notices_any_edit() -> None:
    recorded = manifest()
    again = LineageManifest.from_dict(recorded.to_dict())
    assert again == recorded and again.digest() == recorded.digest()
    assert manifest(data_rows=4).digest() != recorded.digest()
    tags = version_tags(recorded, run_id="abc")
    assert tags["churnops.lineage.sha256"] == recorded.digest()
    assert tags["churnops.lineage.repeatable"] == "false"
    assert tags["churnops.lineage.manifest"] == "runs:/abc/lineage/manifest.json"


def test_production_rows_are_their_own_source() -> None:
    production = ProductionRows(
        fingerprint="p" * 64,
        rows=300,
        window_start="2026-11-01T00:00:00+00:00",
        window_end="2026-12-01T00:00:00+00:00",
        share=0.25,
    )
    table, taken = data_sources(
        path="customers.csv", rows=1200, data_fingerprint="f" * 64, production=production
    )
    assert (table.role, table.rows, table.fingerprint) == ("table", 900, None)
    assert (taken.role, taken.rows, taken.fingerprint, taken.share) == (
        "production",
        300,
        "p" * 64,
        0.25,
    )
    assert taken.window_start and taken.artifact is None
    assert (
        "2026-11-01"
        in version_tags(manifest(sources=[vars(table), vars(taken)]), run_id="r")[
            "churnops.lineage.sources"
        ]
    )


def test_probability_comparison_names_the_first_differing_row() -> None:
    recorded = np.array([0.1, 0.2, 0.3, 0.4])
    check, worst = compare_probabilities(
        recorded, recorded + np.array([0, 0, 1e-12, 2e-9]), tolerance=1e-9, index=[10, 11, 12, 13]
    )
    assert not check.passed and worst == pytest.approx(2e-9)
    assert check.detail.startswith("held-out row 13: registered 0.4")
    assert "1 of 4 rows" in check.detail
    same, worst = compare_probabilities(recorded, recorded.copy(), tolerance=1e-9, index=[0] * 4)
    assert same.passed and worst == 0.0


def test_metric_comparison_uses_the_tolerance() -> None:
    recorded = {"cv": {"roc_auc": 0.8}, "test": {"roc_auc": 0.81, "f1": 0.5}}
    near = {"cv": {"roc_auc": 0.8 + 1e-8}, "test": {"roc_auc": 0.81, "f1": 0.5}}
    assert compare_metrics(recorded, near, tolerance=1e-6).passed
    far = {"cv": {"roc_auc": 0.8}, "test": {"roc_auc": 0.81, "f1": 0.51}}
    check = compare_metrics(recorded, far, tolerance=1e-6)
    assert not check.passed and check.detail == "test_f1 recorded 0.5, rebuilt 0.51"
