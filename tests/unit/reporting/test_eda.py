"""EDA report: sections, offline plotly, numbers that match the data, odd shapes of tables."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from churnops.data.schema import MISSING_CATEGORY, infer_schema
from churnops.datasets import demo_data_settings, demo_path
from churnops.reporting import build_eda_report, write_eda_report
from churnops.reporting.stats import category_table, cramers_v, target_info
from churnops.settings import DataSettings

PLOTLY_HEAD = get_plotlyjs()[:300]


def _frame(n: int = 300, *, seed: int = 0, target: str = "yesno") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], n)
    usage = rng.gamma(2.0, 10.0, n)
    churned = (rng.random(n) < np.where(plan == "basic", 0.5, 0.1)).astype(int)
    return pd.DataFrame(
        {
            "cust": [f"id-{i}" for i in range(n)],
            "plan": plan,
            "usage": usage,
            "age": rng.integers(18, 80, n),
            "promo": rng.integers(0, 2, n),
            "label": np.where(churned == 1, "Yes", "No") if target == "yesno" else churned,
        }
    )


def _schema(frame: pd.DataFrame, **kw: object):
    return infer_schema(frame, DataSettings(target="label", id_column="cust", **kw))


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def _assert_offline(html: str) -> None:
    assert html.count(PLOTLY_HEAD) == 1
    assert not re.search(r"<script[^>]+src=", html)
    assert "cdn.plot.ly" not in html.split(PLOTLY_HEAD)[0]  # nothing fetched before the bundle


def test_one_section_per_feature_and_plotly_inlined_once() -> None:
    frame = _frame()
    schema = _schema(frame)
    html = build_eda_report(frame, schema, title="My <report>", fingerprint="abc123")

    ids = _section_ids(html)
    for name in schema.feature_names:
        assert f"feature-{name}" in ids
    assert "feature-cust" not in ids  # the id column is not a feature
    assert {"target", "missing", "association", "correlation", "features"} <= set(ids)
    for name in schema.feature_names:  # and the table of contents links to each
        assert f'href="#feature-{name}"' in html
    _assert_offline(html)
    assert html.count('class="plotly-graph-div"') >= len(schema.features)
    assert "abc123" in html
    assert "My &lt;report&gt;" in html and "My <report>" not in html
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


@pytest.mark.parametrize("target", ["yesno", "01"])
def test_positive_rate_shown_matches_data(target: str) -> None:
    frame = _frame(target=target)
    schema = _schema(frame)
    positive = "Yes" if target == "yesno" else "1"
    assert schema.positive_label == positive
    rate = (frame["label"].astype(str) == positive).mean()
    n_pos = int((frame["label"].astype(str) == positive).sum())

    html = build_eda_report(frame, schema)

    assert f"Positive rate {100 * rate:.1f}% ({n_pos:,} of {len(frame):,} rows" in html
    assert f"positive rate (label = {positive})" in html


def test_target_info_handles_float_labels_and_missing_target() -> None:
    frame = _frame(target="01")
    schema = _schema(frame)
    floats = frame.assign(label=frame["label"].astype(float))
    floats.loc[:9, "label"] = np.nan
    info = target_info(floats, schema)
    assert info.n_known == len(frame) - 10
    assert info.n_positive == int((floats["label"] == 1.0).sum())
    html = build_eda_report(floats, schema)
    assert f"of {len(frame) - 10:,} rows with a known target" in html
    assert "(missing)" in html


def test_missing_value_counts_for_planted_nulls() -> None:
    frame = _frame()
    frame.loc[frame.index[:37], "usage"] = np.nan
    frame.loc[frame.index[:5], "plan"] = None
    schema = _schema(frame)

    html = build_eda_report(frame, schema)

    missing = html.split('<section id="missing">')[1].split("</section>")[0]
    assert "<td>usage</td><td>37</td>" in missing
    assert "<td>plan</td><td>5</td>" in missing
    assert "2 of 6 columns have missing values" in missing
    assert "<td>age</td>" not in missing  # complete columns are not listed
    assert "37 missing" in html  # in the usage feature section too


def test_no_missing_values_is_said_plainly() -> None:
    frame = _frame()
    html = build_eda_report(frame, _schema(frame))
    assert "No missing values in any of the 6 columns" in html


def test_category_table_counts_and_rates() -> None:
    series = pd.Series(["a", "b", "a", None, "b", "b"])
    frame = pd.DataFrame({"label": ["Yes", "No", "No", "Yes", "Yes", "Yes"], "x": series})
    schema = infer_schema(frame, DataSettings(target="label"))
    table = category_table(series, target_info(frame, schema)).set_index("category")
    assert table.loc["a", "count"] == 2 and table.loc["a", "rate"] == pytest.approx(0.5)
    assert table.loc["b", "count"] == 3 and table.loc["b", "rate"] == pytest.approx(2 / 3)
    assert table.loc[MISSING_CATEGORY, "count"] == 1
    assert table["share"].sum() == pytest.approx(1.0)


def test_category_rates_in_report() -> None:
    frame = _frame()
    schema = _schema(frame)
    html = build_eda_report(frame, schema)
    section = html.split('<section id="feature-plan">')[1].split("</section>")[0]
    basic = frame[frame["plan"] == "basic"]
    rate = (basic["label"] == "Yes").mean()
    n_yes = int((basic["label"] == "Yes").sum())
    assert f"<td>basic</td><td>{len(basic)}</td>" in section
    assert f"<td>{n_yes}</td><td>{100 * rate:.1f}%</td>" in section


def test_long_tail_of_categories_is_folded() -> None:
    frame = _frame(n=400)
    frame["shop"] = [f"shop-{i % 60}" for i in range(len(frame))]
    html = build_eda_report(frame, _schema(frame))
    assert "(other 36 categories)" in html


def test_no_numeric_features() -> None:
    frame = _frame()[["cust", "plan", "label"]]
    schema = _schema(frame)
    assert all(not c.is_numeric_encoded for c in schema.features)
    html = build_eda_report(frame, schema)
    assert "No numeric features: no correlation matrix." in html
    assert "feature-plan" in _section_ids(html)
    _assert_offline(html)


def test_no_categorical_features() -> None:
    frame = _frame()[["cust", "usage", "age", "label"]]
    schema = _schema(frame)
    html = build_eda_report(frame, schema)
    assert "No categorical features: no association matrix." in html
    assert {"feature-usage", "feature-age"} <= set(_section_ids(html))
    _assert_offline(html)


def test_extreme_tail_and_all_null_numeric_do_not_break() -> None:
    frame = _frame()
    frame.loc[0, "usage"] = 1e9
    frame["empty"] = np.nan
    html = build_eda_report(frame, _schema(frame, exclude=[]))
    assert "extreme values are" in html
    assert "No numeric values to plot" in html


def test_frame_is_not_modified() -> None:
    frame = _frame()
    frame.loc[:3, "usage"] = np.nan
    before = frame.copy()
    build_eda_report(frame, _schema(frame))
    pd.testing.assert_frame_equal(frame, before)


def test_cramers_v_bounds() -> None:
    a = np.array([0, 0, 1, 1] * 25)
    assert cramers_v(a, a) == pytest.approx(1.0)
    assert cramers_v(a, np.array([0, 1, 0, 1] * 25)) == pytest.approx(0.0)
    assert cramers_v(a, np.zeros_like(a)) == 0.0


def test_write_is_atomic_and_creates_parents(tmp_path: Path) -> None:
    frame = _frame(n=120)
    path = tmp_path / "a" / "b" / "eda.html"
    out = write_eda_report(frame, _schema(frame), path, title="T")
    assert out == path and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["eda.html"]  # no temp file left


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_report_permissions_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Not mkstemp's 0600: an MLflow server running as another user must be able to show it
    (with the usual umask), and an operator who wants it private says so with the umask."""
    frame = _frame(n=60)
    previous = os.umask(umask)
    try:
        path = write_eda_report(frame, _schema(frame), tmp_path / f"{umask:o}" / "eda.html")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_bundled_dataset(tmp_path: Path) -> None:
    frame = pd.read_csv(demo_path())
    schema = infer_schema(frame, demo_data_settings())
    path = write_eda_report(frame, schema, tmp_path / "eda.html", fingerprint="f" * 64)
    html = path.read_text(encoding="utf-8")
    ids = set(_section_ids(html))
    assert {f"feature-{n}" for n in schema.feature_names} <= ids
    assert f"feature-{schema.id_column}" not in ids
    rate = (frame[schema.target].astype(str) == schema.positive_label).mean()
    assert f"Positive rate {100 * rate:.1f}%" in html
    for column, count in frame.isna().sum().items():
        if count:
            assert f"<td>{column}</td><td>{count}</td>" in html
    _assert_offline(html)
    assert len(html) < 6_000_000  # plotly.js (~4.8 MB) plus small aggregated figures
