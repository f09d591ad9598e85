"""App benchmark: first render of the Monitoring page over 100k and 1M stored predictions.

Each store (SQLite, and PostgreSQL when it answers) is seeded with N predictions spread over 90
days (the last 14 drifted: monthly charges x1.3, 40% moved to month-to-month), feedback labels for
10% of them, and 90 daily monitoring results (7-day windows, as `churnops monitor` stores them).
The page then runs under Streamlit's AppTest in a fresh process per store (3 times; the fastest
is reported): imports, first render (caches empty) and a second render (cached) are timed, and
the process's peak RSS is read.
Postgres stores are VACUUM ANALYZEd first, as autovacuum would have done to a running store.
Results: bench/results/app.{json,md}.

    .venv/bin/python bench/app.py [--rows 100000 1000000] [--no-postgres] [--reseed]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "app"
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "src" / "churnops" / "dashboard" / "pages" / "monitoring.py"
POSTGRES_URL = os.environ.get(
    "CHURNOPS_BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
MODEL_NAME = "churn-model"
DAYS = 90
DRIFT_DAYS = 14
CHECK_WINDOW_DAYS = 7
FEEDBACK_SHARE = 0.1
SAMPLE_PER_DAY = 3_000  # rows per day behind the stored monitoring results
CHUNK = 50_000
# Demo column names: fine in a benchmark, never in the library.
SHIFTED_NUMERIC = "monthly_charges"
SHIFTED_CATEGORICAL = "contract"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------------- synthetic data
def _demo() -> tuple[Any, Any]:
    from churnops.data.ingest import read_table
    from churnops.data.schema import infer_schema
    from churnops.datasets import demo_data_settings, demo_path

    frame = read_table(demo_path())
    return frame, infer_schema(frame, demo_data_settings())


def _score(frame: Any) -> Any:
    """A made-up but monotone churn score: dearer, newer, month-to-month customers churn more."""
    import numpy as np

    z = (
        -1.2
        + 0.025 * (frame[SHIFTED_NUMERIC].to_numpy(float) - 65)
        - 0.04 * frame["tenure"].to_numpy(float)
        + 1.3 * (frame[SHIFTED_CATEGORICAL] == "Month-to-month").to_numpy(float)
    )
    return 1 / (1 + np.exp(-z))


def _risk(p: Any) -> Any:
    import numpy as np

    return np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))


def _rows(demo: Any, features: list[str], times: Any, rng: Any, drift_from: datetime) -> Any:
    """Demo rows resampled, stamped with `times`, drifted after `drift_from`, scored."""
    import numpy as np
    import pandas as pd

    frame = demo[features].iloc[rng.integers(0, len(demo), len(times))].reset_index(drop=True)
    stamps = pd.to_datetime(pd.Series(times), utc=True)
    drifted = (stamps >= pd.Timestamp(drift_from)).to_numpy()
    frame.loc[drifted, SHIFTED_NUMERIC] = frame.loc[drifted, SHIFTED_NUMERIC] * 1.3
    moved = drifted & (rng.random(len(frame)) < 0.4)
    frame.loc[moved, SHIFTED_CATEGORICAL] = "Month-to-month"
    p = _score(frame)
    frame["created_at"] = stamps
    frame["churn_probability"] = p
    frame["will_churn"] = p >= 0.5
    frame["risk_level"] = _risk(p)
    frame["label"] = np.where(rng.random(len(frame)) < p, 1.0, 0.0)
    return frame


def reference() -> Any:
    from churnops.monitoring.model_reference import reference_from_frame

    demo, schema = _demo()
    scored = demo.copy()
    scored["churn_probability"] = _score(scored)
    scored["risk_level"] = _risk(scored["churn_probability"].to_numpy())
    built = reference_from_frame(scored, schema)
    return built, demo, schema


def seed(url: str, rows: int, *, seed_value: int = 7) -> dict[str, Any]:
    """Predictions, feedback and 90 daily monitoring results into the store at `url`."""
    import numpy as np

    from churnops.store import FeedbackRecord, PredictionRecord, PredictionStore
    from churnops.store.records import new_prediction_ids

    rng = np.random.default_rng(seed_value)
    _, demo, schema = reference()
    features = schema.feature_names
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS)
    drift_from = now - timedelta(days=DRIFT_DAYS)
    started = time.perf_counter()
    with PredictionStore(url) as store:
        store.create()
        for offset in range(0, rows, CHUNK):
            n = min(CHUNK, rows - offset)
            seconds = np.sort(rng.uniform(0, DAYS * 86400, n))
            times = [start + timedelta(seconds=float(s)) for s in seconds]
            frame = _rows(demo, features, times, rng, drift_from)
            ids = new_prediction_ids(n)
            records = [
                PredictionRecord(
                    features=row,
                    churn_probability=float(p),
                    will_churn=bool(w),
                    risk_level=str(r),
                    model_name=MODEL_NAME,
                    model_version="1",
                    prediction_id=pid,
                    created_at=t,
                )
                for row, p, w, r, pid, t in zip(
                    frame[features].to_dict(orient="records"),
                    frame["churn_probability"],
                    frame["will_churn"],
                    frame["risk_level"],
                    ids,
                    times,
                    strict=True,
                )
            ]
            store.write_predictions(records)
            labelled = np.flatnonzero(rng.random(n) < FEEDBACK_SHARE)
            store.write_feedback(
                FeedbackRecord(
                    prediction_id=ids[i], label=int(frame["label"].iloc[i]), received_at=now
                )
                for i in labelled
            )
        predictions_seconds = time.perf_counter() - started
    n_results = seed_checks(url, seed_value=seed_value + 1)
    return {
        "rows": rows,
        "feedback_share": FEEDBACK_SHARE,
        "monitoring_results": n_results,
        "seed_seconds": time.perf_counter() - started,
        "predictions_seconds": predictions_seconds,
    }


def seed_checks(url: str, *, seed_value: int = 8) -> int:
    """Replace the stored monitoring results with 90 daily 7-day checks of sampled rows (so a
    reused store always holds checks in the current report format)."""
    import numpy as np

    from churnops.monitoring.monitor import report_from_summary
    from churnops.monitoring.run import RESULT_KIND
    from churnops.monitoring.summary import merge_all
    from churnops.monitoring.temporal import summarise_by_period
    from churnops.settings import MonitoringSettings
    from churnops.store import PredictionStore
    from churnops.store.store import MONITORING_RESULTS

    rng = np.random.default_rng(seed_value)
    ref, demo, schema = reference()
    features = schema.feature_names
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS)
    drift_from = now - timedelta(days=DRIFT_DAYS)
    with PredictionStore(url) as store:
        with store.engine.begin() as conn:
            conn.execute(MONITORING_RESULTS.delete())
        # Per-day summaries of a sample, merged into one 7-day check per day (as the monitor does).
        settings = MonitoringSettings()
        day_summaries: dict[str, Any] = {}
        for day in range(DAYS + CHECK_WINDOW_DAYS):
            day_start = start - timedelta(days=CHECK_WINDOW_DAYS) + timedelta(days=day)
            seconds = np.sort(rng.uniform(0, 86400, SAMPLE_PER_DAY))
            times = [day_start + timedelta(seconds=float(s)) for s in seconds]
            frame = _rows(demo, features, times, rng, drift_from)
            frame.loc[rng.random(len(frame)) >= 0.3, "label"] = np.nan  # 30% labelled
            day_summaries |= summarise_by_period(frame, ref, period="day")
        keys = sorted(day_summaries)
        for end_index in range(CHECK_WINDOW_DAYS, len(keys) + 1):
            window_keys = keys[end_index - CHECK_WINDOW_DAYS : end_index]
            periods = {k: day_summaries[k] for k in window_keys}
            summary = merge_all(list(periods.values()))
            report = report_from_summary(
                summary, ref, settings=settings, periods=periods, period="day"
            )
            window_end = datetime.fromisoformat(window_keys[-1]).replace(tzinfo=UTC) + timedelta(
                days=1
            )
            store.record_monitoring_result(
                kind=RESULT_KIND,
                drift_detected=report.drift_found,
                summary=report.to_dict()
                | {"run": {"model_name": MODEL_NAME, "model_version": "1", "source": "bench"}},
                window_start=window_end - timedelta(days=CHECK_WINDOW_DAYS),
                window_end=window_end,
                created_at=min(window_end, now),
            )
    return len(keys) - CHECK_WINDOW_DAYS + 1


# --------------------------------------------------------------------------- measuring (subprocess)
def side_measure() -> dict[str, Any]:
    """Run in a fresh process with CHURNOPS_DATABASE_URL set: time the page under AppTest."""
    started = time.perf_counter()
    import plotly.graph_objects  # noqa: F401
    from streamlit.testing.v1 import AppTest

    import churnops.monitoring.history
    import churnops.store.queries  # noqa: F401

    imported = time.perf_counter()
    # Streamlit's one-time start-up (scanning installed packages for components: ~0.7 s here) is
    # paid by a server once, not per page view: an empty script takes it before the clock starts.
    AppTest.from_string("import streamlit as st", default_timeout=300).run()
    warmed = time.perf_counter()
    cpu_before = time.process_time()
    app = AppTest.from_file(str(PAGE), default_timeout=300)
    app.run()
    first = time.perf_counter()
    first_cpu = time.process_time() - cpu_before
    exceptions = [str(e.value) for e in app.exception]
    errors = [str(e.value) for e in app.error]
    app.run()
    second = time.perf_counter()
    return {
        "import_seconds": imported - started,
        "streamlit_startup_seconds": warmed - imported,
        "first_render_seconds": first - warmed,
        # CPU of this process (the page, SQLite included; not the Postgres server): it moves
        # far less than wall time when other work shares the 2 cores.
        "first_render_cpu_seconds": first_cpu,
        "load_average_1min": os.getloadavg()[0],
        "cached_render_seconds": second - first,
        "peak_rss_mb": _peak_rss_mb(),
        "exceptions": exceptions,
        "alerts_shown": errors,
        "charts": len(app.get("plotly_chart")),
    }


def measure(url: str, home: Path, *, repeat: int) -> dict[str, Any]:
    """The fastest of `repeat` fresh processes (the machine is shared: the minimum is the
    figure least disturbed by other work), with every run's first render kept beside it."""
    runs = [measure_once(url, home) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["first_render_seconds"])
    return best | {"first_render_seconds_all": [r["first_render_seconds"] for r in runs]}


def measure_once(url: str, home: Path) -> dict[str, Any]:
    env = os.environ | {
        "CHURNOPS_DATABASE_URL": url,
        "CHURNOPS_HOME": str(home),
        "CHURNOPS_CONFIG": str(home / "absent.yaml"),
        "CHURNOPS_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
    }
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--side", "measure"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------------ stores
def sqlite_url(rows: int) -> str:
    return f"sqlite:///{WORK / f'predictions-{rows}.db'}"


def postgres_url(rows: int) -> str | None:
    """A schema of its own in the local Postgres, or None when Postgres does not answer."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"churnops_bench_app_{rows}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable ({exc}); SQLite only", file=sys.stderr)
        return None
    return base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def seeded_rows(url: str) -> int:
    from churnops.store.store import PredictionStore

    with PredictionStore(url) as store:
        try:
            return store.count_predictions()
        except Exception:
            return 0


def vacuum(url: str) -> None:
    """VACUUM ANALYZE a Postgres store: what autovacuum does to a store that has been running a
    while (right after a bulk load, index-only scans still visit every heap row)."""
    from sqlalchemy import text

    from churnops.store import PredictionStore

    with PredictionStore(url) as store:
        conn = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with conn:
            for table in ("predictions", "feedback", "monitoring_results"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))


def drop_postgres_schema(rows: int) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "churnops_bench_app_{rows}" CASCADE')


# ----------------------------------------------------------------------------------------- report
def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "app.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# App: Monitoring page first render",
        "",
        f"Store seeded with predictions over {DAYS} days (last {DRIFT_DAYS} drifted), feedback "
        f"for {FEEDBACK_SHARE:.0%} of them and {DAYS} daily monitoring results. The page runs "
        "under Streamlit's AppTest in a fresh process per store, 3 times, fastest shown; first "
        "render = caches empty, modules imported, Streamlit started. Machine: "
        f"{result['machine']}, shared with other work (load average in the table).",
        "",
    ]
    for backend, runs in result["stores"].items():
        sizes = sorted(runs, key=int)
        if not sizes:
            continue
        lines += [f"## {backend}", ""]
        header = "| | " + " | ".join(f"{int(s):,} rows" for s in sizes)
        ratio = len(sizes) > 1
        lines.append(header + (" | ratio |" if ratio else " |"))
        lines.append("|---" * (len(sizes) + 1 + ratio) + "|")
        for key, label in (
            ("first_render_seconds", "first render, wall (s)"),
            ("first_render_cpu_seconds", "first render, CPU of the app process (s)"),
            ("cached_render_seconds", "cached render (s)"),
            ("import_seconds", "imports, fresh process (s)"),
            ("peak_rss_mb", "peak RSS of the app process (MB)"),
            ("load_average_1min", "machine load average (1 min) at the end"),
        ):
            values = [runs[s]["measure"][key] for s in sizes]
            row = f"| {label} | " + " | ".join(f"{v:.2f}" for v in values)
            if ratio:
                row += f" | {values[-1] / values[0]:.2f}x"
            lines.append(row + " |")
        lines.append("")
    lines += [
        "What stays flat: the page reads ~90 stored checks whatever the traffic, and counts "
        "predictions per day with one range count per day on the `(model_name, created_at)` "
        "index; no prediction row is read. The SQLite process grows by ~50 MB at 1M rows: the "
        "index pages in SQLite's page cache (the store sets 64 MiB per connection, so it stops "
        "there); measured alone, the volume count adds 6 MB of RSS at 100k and 54 MB at 1M.",
        "",
    ]
    (RESULTS / "app.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--reseed", action="store_true", help="seed again even if stored")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per store")
    parser.add_argument("--side", choices=["measure"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "measure":
        print(json.dumps(side_measure()))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    stores: dict[str, dict[str, Any]] = {"sqlite": {}, "postgresql": {}}
    for rows in args.rows:
        urls = {"sqlite": sqlite_url(rows)}
        if not args.no_postgres and (pg := postgres_url(rows)) is not None:
            urls["postgresql"] = pg
        for backend, url in urls.items():
            if args.reseed or seeded_rows(url) != rows:
                if backend == "sqlite":
                    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                else:
                    drop_postgres_schema(rows)
                    url = postgres_url(rows) or url
                print(f"seeding {backend} with {rows:,} predictions ...", flush=True)
                seeded = seed(url, rows)
            else:
                print(f"re-recording the checks in {backend} ({rows:,} predictions) ...")
                seeded = {"rows": rows, "reused": True, "monitoring_results": seed_checks(url)}
            if backend == "postgresql":
                vacuum(url)
            measured = measure(url, WORK / f"home-{backend}-{rows}", repeat=args.repeat)
            print(f"{backend} {rows:,}: {json.dumps(measured)}", flush=True)
            stores[backend][str(rows)] = {"seed": seeded, "measure": measured}
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        "page": str(PAGE.relative_to(ROOT)),
        "stores": {k: v for k, v in stores.items() if v},
    }
    write_results(result)
    print((RESULTS / "app.md").read_text())


if __name__ == "__main__":
    main()
