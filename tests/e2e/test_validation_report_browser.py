"""The validation report in a real browser (Debian's headless Chromium via Playwright): the
verdict, the blocking failure, the fairness and direction tables and the segments are on screen.
The screenshot goes to tests/artifacts/ (with CHURNOPS_DOCS_SCREENSHOTS=1 also docs/img/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops.data.schema import infer_schema
from churnops.settings import DataSettings, DirectionExpectation, ValidationSettings
from churnops.validation.report import write_html
from churnops.validation.run import ModelUnderTest, validate_model
from tests.e2e.test_app_browser import ARTIFACTS, DOCS_IMG
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, need_chromium

pytestmark = pytest.mark.integration

TERMS = ["monthly", "yearly", "biennial"]


def _report(path: Path) -> Path:
    """A model that rates one group far riskier and reads its term order backwards."""
    rng = np.random.default_rng(0)
    n = 1500
    frame = pd.DataFrame(
        {
            "cid": [f"C{i}" for i in range(n)],
            "term": rng.choice(TERMS, n),
            "months": rng.integers(0, 72, n),
            "group": rng.choice(["north", "south"], n),
            "churn": rng.choice(["Yes", "No"], n, p=[0.3, 0.7]),
        }
    )
    settings = DataSettings(target="churn", positive_label="Yes", id_column="cid")
    schema = infer_schema(frame, settings)
    y = (frame["churn"] == "Yes").to_numpy().astype(int)

    def predict(f: pd.DataFrame) -> np.ndarray:
        term = f["term"].map({t: i for i, t in enumerate(TERMS)}).fillna(0).to_numpy(dtype=float)
        south = (f["group"] == "south").to_numpy(dtype=float)
        months = pd.to_numeric(f["months"], errors="coerce").fillna(0).to_numpy(dtype=float)
        return 1 / (1 + np.exp(-(-1.5 + 0.6 * term + 1.5 * south - 0.01 * months)))

    model = ModelUnderTest("candidate", schema, 0.4, predict)
    result = validate_model(
        model,
        frame,
        y,
        settings=ValidationSettings(
            sensitive_columns=["group"],
            directions=[DirectionExpectation(column="term", risk="decreasing", order=TERMS)],
        ),
    )
    return write_html(result, path, title="Validation report")


def test_report_reads_well_in_a_browser(tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    report = _report(tmp_path / "report.html")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page: Any = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(report.as_uri())
            assert page.title() == "Validation report"
            assert page.locator(".status .badge").inner_text() == "failed"
            blocking = page.locator("text=Blocks promotion").locator(
                "xpath=../following-sibling::ul[1]"
            )
            assert "fairness group demographic_parity_difference" in blocking.inner_text()
            assert "direction term" in blocking.inner_text()
            assert page.locator("h2", has_text="Fairness").is_visible()
            assert page.locator("tr.bad").count() >= 3  # two fairness limits and the direction
            assert page.locator("h2", has_text="Weakest segments").is_visible()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "validation-report.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("CHURNOPS_DOCS_SCREENSHOTS") == "1":
                shutil.copyfile(shot, DOCS_IMG / "validation-report.png")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
