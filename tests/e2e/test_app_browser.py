"""The app in a real browser: Debian's headless Chromium driven by Playwright.

`churnops app` runs as a process on a free loopback port, scoring through a live API (keys on).
The test fills the customer form, predicts and reads the risk level; uploads a file and reads the
summary; opens Monitoring on a store seeded with drift and reads the alert naming the drifted
feature. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from churnops.api.app import create_app
from churnops.apikeys import hash_key
from churnops.datasets import demo_path
from tests.integration.monitor_support import seed_store
from tests.support.api import api_settings, live_server
from tests.support.app import churnops_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.support.models import TrainedModel
from tests.support.stores import free_port
from tests.unit.monitoring.synthetic import build_reference, make_customers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
KEY = "browser-test-key-0123456789"
TIMEOUT_MS = 60_000


@dataclass
class RunningApp:
    url: str
    api_url: str
    info: dict[str, Any]


@pytest.fixture(scope="module")
def running_app(
    trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    need_chromium()
    # The Monitoring page reads this store: six days of predictions, drift in the last two.
    monitored = tmp_path_factory.mktemp("browser-monitoring")
    store_url = f"sqlite:///{monitored / 'predictions.db'}"
    seed_store(store_url, build_reference(make_customers(7_000, seed=1)))
    settings = api_settings(trained_model, tmp_path_factory.mktemp("browser-api"))
    settings.serving.api_key_hashes = [hash_key(KEY)]
    with live_server(create_app(settings)) as api_url:
        info = httpx.get(
            f"{api_url}/model", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        ).json()
        port = free_port()
        env = {
            "CHURNOPS_API_KEY": KEY,
            "CHURNOPS_APP__MAX_UPLOAD_MB": "5",
            "CHURNOPS_DATABASE_URL": store_url,
            "CHURNOPS_HOME": str(monitored / "home"),
        }
        args = ["--api-url", api_url, "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        with churnops_app(args, env, health=[f"{url}/_stcore/health"]):
            yield RunningApp(url, api_url, info)


@pytest.fixture(scope="module")
def browser(running_app: RunningApp) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 2000})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    try:
        yield opened
    finally:
        context.close()


def metric_value(page: Any, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)
    )
    return str(metric.locator('[data-testid="stMetricValue"]').inner_text()).strip()


def shot(page: Any, name: str, *, height: int) -> Path:
    """The top `height` pixels of the page; with CHURNOPS_DOCS_SCREENSHOTS=1 also docs/img/app-NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1400, "height": height})
    if os.environ.get("CHURNOPS_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS_IMG / f"app-{name}.png")
    return path


def test_customer_form_predicts_and_shows_the_risk_level(
    running_app: RunningApp, page: Any
) -> None:
    info = running_app.info
    numeric = next(c for c in info["schema"]["features"] if c["kind"] == "numeric")
    high = int(numeric["max"]) if numeric["dtype"] == "int" else float(numeric["max"])
    page.goto(running_app.url + "/")
    page.get_by_role("heading", name="Customer").wait_for()
    field = page.get_by_label(numeric["name"], exact=True)
    field.fill(str(high))
    field.press("Tab")
    page.get_by_role("button", name="Predict").click()
    page.locator('[data-testid="stMetricLabel"]', has_text="Risk level").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    shown_level = metric_value(page, "Risk level")
    shown_probability = metric_value(page, "Churn probability")
    shot(page, "customer", height=1680)
    # The same customer straight from the API: the page shows the API's answer.
    customer = dict(info["input_example"])
    customer[numeric["name"]] = high
    expected = httpx.post(
        f"{running_app.api_url}/predict",
        json=customer,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    ).json()
    assert shown_level == expected["risk_level"].upper()
    assert shown_probability == f"{expected['churn_probability']:.1%}"
    assert page.get_by_text("Recommendations").count() == 1


def test_upload_is_scored_and_summarised(
    running_app: RunningApp, page: Any, tmp_path: Path
) -> None:
    frame = pd.read_csv(demo_path()).head(300)
    upload = tmp_path / "customers.csv"
    frame.to_csv(upload, index=False)
    page.goto(running_app.url + "/batch")
    page.get_by_role("heading", name="Batch").wait_for()
    page.locator('input[type="file"]').set_input_files(str(upload))
    page.locator('[data-testid="stMetricLabel"]', has_text="Customers scored").wait_for()
    page.get_by_text("Riskiest customers").wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    assert metric_value(page, "Customers scored") == "300"
    assert metric_value(page, "Rows rejected") == "0"
    rate = metric_value(page, "Predicted churn rate")
    assert rate.endswith("%") and 0.0 <= float(rate.rstrip("%")) <= 100.0
    assert page.get_by_role("button", name="Download the scored file (CSV)").count() == 1
    shot(page, "batch", height=1340)


def test_service_page_shows_the_api_state(running_app: RunningApp, page: Any) -> None:
    page.goto(running_app.url + "/service")
    page.locator('[data-testid="stMetricLabel"]', has_text="Readiness").wait_for()
    assert metric_value(page, "Health") == "alive"
    assert metric_value(page, "Readiness") == "ok"
    shot(page, "service", height=1000)


def test_monitoring_names_the_open_drift_alert_and_the_drifted_feature(
    running_app: RunningApp, page: Any
) -> None:
    page.goto(running_app.url + "/monitoring")
    page.get_by_role("heading", name="Monitoring").wait_for()
    alert = page.locator('[data-testid="stAlert"]', has_text="Open alert").filter(
        has_text="dataset drift"
    )
    alert.first.wait_for()
    assert "monthly_charges" in alert.first.inner_text()
    page.get_by_text("Latest check").first.wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()  # the timeline and the drift heatmap
    assert "monthly_charges" in page.get_by_text("Latest check").first.inner_text()
    shot(page, "monitoring-browser", height=1400)
