"""Data-drift benchmark: churnops vs Evidently's DataDriftPreset on 1,000,000 current rows.

Reference: the bundled telco table. Current: rows resampled from it with two shifts (monthly
charges x1.2, a quarter of customers moved to month-to-month contracts). Each tool runs in its
own subprocess (Evidently 0.7 in a pandas<3 venv under bench/.work, built when missing) and
reports its seconds and peak RSS; the parent writes bench/results/drift.{json,md}.

    .venv/bin/python bench/drift.py [--rows 1000000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
DATA = WORK / "drift"
RESULTS = ROOT / "bench" / "results"
EVIDENTLY_VENV = WORK / "evidently-venv"
EVIDENTLY_REQUIREMENTS = ["pandas<3", "evidently==0.7.23", "pyarrow"]
SHIFTED_NUMERIC = "monthly_charges"  # demo column names: fine in a benchmark, never in the library
SHIFTED_CATEGORICAL = "contract"
CHARGES_FACTOR = 1.2
MOVED_TO_MONTHLY = 0.4


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------- preparation (parent, churnops env)
def prepare(rows: int, seed: int) -> dict[str, Any]:
    """Write reference.csv, current.parquet and columns.json under bench/.work/drift."""
    import numpy as np

    from churnops.data.ingest import read_table
    from churnops.data.schema import infer_schema
    from churnops.datasets import demo_data_settings, demo_path

    reference = read_table(demo_path())
    schema = infer_schema(reference, demo_data_settings())
    features = schema.feature_names
    rng = np.random.default_rng(seed)
    current = reference[features].iloc[rng.integers(0, len(reference), rows)].reset_index(drop=True)
    current[SHIFTED_NUMERIC] = current[SHIFTED_NUMERIC] * CHARGES_FACTOR
    moved = rng.random(rows) < MOVED_TO_MONTHLY
    current.loc[moved, SHIFTED_CATEGORICAL] = "Month-to-month"
    DATA.mkdir(parents=True, exist_ok=True)
    reference.to_csv(DATA / "reference.csv", index=False)
    current.to_parquet(DATA / "current.parquet", index=False)
    columns = {
        "numerical": [c.name for c in schema.numeric_features if c.categories is None],
        "categorical": [c.name for c in schema.features if c.categories is not None],
    }
    (DATA / "columns.json").write_text(json.dumps(columns))
    return columns


def ensure_evidently_venv() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"building {EVIDENTLY_VENV} (pandas<3, evidently 0.7.23) ...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(EVIDENTLY_VENV)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


# ---------------------------------------------------------------------------- sides (subprocesses)
def side_churnops() -> dict[str, Any]:
    import pandas as pd

    from churnops.data.ingest import read_table
    from churnops.data.profile import profile_frame
    from churnops.data.schema import infer_schema
    from churnops.datasets import demo_data_settings
    from churnops.monitoring.drift import data_drift
    from churnops.monitoring.reference import MonitoringReference
    from churnops.monitoring.summary import WindowSummary
    from churnops.settings import MonitoringSettings

    started = time.perf_counter()
    reference = read_table(DATA / "reference.csv")
    current = pd.read_parquet(DATA / "current.parquet")
    loaded = time.perf_counter()
    schema = infer_schema(reference, demo_data_settings())
    monitoring = MonitoringReference(profile=profile_frame(reference, schema), schema=schema)
    summary = WindowSummary.from_frame(current, monitoring)
    report = data_drift(summary, monitoring, MonitoringSettings())
    done = time.perf_counter()
    columns = {
        f.feature: {
            "drift": f.drifted,
            "status": f.status,
            "psi": round(f.psi, 4),
            "jensen_shannon": round(f.js_distance, 4),
            "wasserstein_norm": None
            if f.wasserstein_norm is None
            else round(f.wasserstein_norm, 4),
        }
        for f in report.features
    }
    return {
        "tool": "churnops",
        "load_seconds": loaded - started,
        "compute_seconds": done - loaded,
        "dataset_drift": report.dataset_drift,
        "share_drifted": report.share_drifted,
        "columns": columns,
        "peak_rss_mb": _peak_rss_mb(),
    }


def side_evidently() -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = json.loads((DATA / "columns.json").read_text())
    features = columns["numerical"] + columns["categorical"]
    started = time.perf_counter()
    reference = pd.read_csv(DATA / "reference.csv")[features]
    current = pd.read_parquet(DATA / "current.parquet")[features]
    loaded = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=columns["numerical"], categorical_columns=columns["categorical"]
    )
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    done = time.perf_counter()
    decisions: dict[str, Any] = {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, value, threshold = config["method"], float(metric["value"]), config["threshold"]
        is_p_value = "p_value" in method.lower() or "test" in method.lower()
        drift = value < threshold if is_p_value else value >= threshold
        decisions[config["column"]] = {
            "drift": drift,
            "method": method,
            "value": round(value, 4),
            "threshold": threshold,
        }
    return {
        "tool": "evidently",
        "load_seconds": loaded - started,
        "compute_seconds": done - loaded,
        "share_drifted": share,
        "dataset_drift": share is not None and share >= 0.5,
        "columns": decisions,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_side(python: Path, side: str) -> dict[str, Any]:
    started = time.perf_counter()
    completed = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--side", side],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------- reporting
def _explain(column: str, ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    if not theirs:
        return f"{column}: missing from Evidently's output."
    if ours["drift"] == theirs["drift"]:
        return ""
    who = "churnops" if ours["drift"] else "Evidently"
    return (
        f"{column}: only {who} flags it. churnops PSI {ours['psi']}, JS {ours['jensen_shannon']}, "
        f"Wasserstein {ours['wasserstein_norm']}; Evidently {theirs['method']} {theirs['value']} "
        f"(threshold {theirs['threshold']})."
    )


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "drift.json").write_text(json.dumps(result, indent=2))
    ours, theirs = result["churnops"], result["evidently"]
    lines = [
        "# Data drift: churnops vs Evidently DataDriftPreset",
        "",
        f"Reference: bundled telco table ({result['reference_rows']:,} rows). Current: "
        f"{result['rows']:,} rows resampled from it, `{SHIFTED_NUMERIC}` x{CHARGES_FACTOR} and "
        f"{MOVED_TO_MONTHLY:.0%} of rows moved to `{SHIFTED_CATEGORICAL}` = Month-to-month. "
        f"Each tool in its own process; same files, same column types. "
        f"Machine: {result['machine']}.",
        "",
        "| | churnops | Evidently 0.7.23 |",
        "|---|---:|---:|",
        f"| drift computation (s) | {ours['compute_seconds']:.2f} | {theirs['compute_seconds']:.2f} |",
        f"| loading the files (s) | {ours['load_seconds']:.2f} | {theirs['load_seconds']:.2f} |",
        f"| whole process incl. imports (s) | {ours['process_seconds']:.2f} | "
        f"{theirs['process_seconds']:.2f} |",
        f"| peak RSS (MB) | {ours['peak_rss_mb']:.0f} | {theirs['peak_rss_mb']:.0f} |",
        f"| share of drifted columns | {ours['share_drifted']:.3f} | {theirs['share_drifted']:.3f} |",
        "",
        f"**Speed-up of the drift computation: {result['speedup_compute']:.1f}x** "
        f"(whole process: {result['speedup_process']:.1f}x).",
        "",
        "| column | churnops | PSI | JS | Wasserstein (normed) | Evidently | method | value |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for column, mine in ours["columns"].items():
        other = theirs["columns"].get(column, {})
        lines.append(
            f"| {column} | {'**drift**' if mine['drift'] else mine['status']} | {mine['psi']} | "
            f"{mine['jensen_shannon']} | {mine['wasserstein_norm'] if mine['wasserstein_norm'] is not None else '-'} | "
            f"{'**drift**' if other.get('drift') else 'no drift'} | {other.get('method', '-')} | "
            f"{other.get('value', '-')} |"
        )
    lines += ["", "## Agreement", ""]
    if result["disagreements"]:
        lines += [f"- {d}" for d in result["disagreements"]]
    else:
        lines.append("Both tools reach the same decision on every column.")
    lines += [
        "",
        "Both shifted columns flagged by churnops: "
        f"{result['shifted_flagged']}; unshifted columns flagged by churnops: "
        f"{result['unshifted_flagged'] or 'none'}.",
        "",
        "## Why the speed difference",
        "",
        "churnops never compares raw rows: the reference travels as a 1001-point quantile sketch,",
        "decile bins and category counts; the current window is reduced to cumulative counts on the",
        "reference grid (one numpy sort + searchsorted per numeric column, one value_counts per",
        "categorical). KS and Wasserstein are then computed on ~1,000 grid points instead of",
        "1,000,000 rows (within ~0.001 of scipy on the raw samples, see tests/unit/monitoring).",
        "Evidently computes its statistics on the full frames and builds widgets for its report.",
        "",
        "Decision rules differ on purpose: Evidently (above 1,000 rows) flags numerics on normed",
        "Wasserstein >= 0.1 and categoricals on Jensen-Shannon >= 0.1; churnops flags on",
        "PSI >= 0.2 or JS >= 0.1 on the reference deciles (the issue's defaults; with",
        "`monitoring.js_needs_wasserstein` a numeric JS hit also needs normed Wasserstein >= 0.1,",
        "see `churnops.monitoring.drift`). Evidently's dataset drift uses a 0.5 share, churnops 0.3.",
        "",
        "Jensen-Shannon values differ by a constant factor: Evidently calls scipy's",
        "`jensenshannon` with its default natural logarithm, churnops uses base 2 (bounded by 1),",
        "so Evidently's figure is churnops' x sqrt(ln 2) = 0.833 and its 0.1 threshold equals 0.12",
        "in base 2; churnops is the slightly more sensitive of the two on categoricals. Normed",
        "Wasserstein values agree to about 0.001 (churnops reads them off the 1001-point sketch).",
    ]
    (RESULTS / "drift.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--side", choices=["churnops", "evidently"])
    args = parser.parse_args()
    if args.side:
        side = side_churnops if args.side == "churnops" else side_evidently
        print(json.dumps(side()))
        return

    import platform

    columns = prepare(args.rows, args.seed)
    evidently_python = ensure_evidently_venv()
    ours = run_side(Path(sys.executable), "churnops")
    theirs = run_side(evidently_python, "evidently")
    shifted = {SHIFTED_NUMERIC, SHIFTED_CATEGORICAL}
    flagged = {c for c, d in ours["columns"].items() if d["drift"]}
    disagreements = [
        text
        for column in ours["columns"]
        if (text := _explain(column, ours["columns"][column], theirs["columns"].get(column, {})))
    ]
    result = {
        "rows": args.rows,
        "reference_rows": sum(1 for _ in (DATA / "reference.csv").open()) - 1,
        "columns": columns,
        "machine": f"{platform.machine()}, {platform.python_version()}, "
        f"{__import__('os').cpu_count()} CPUs",
        "churnops": ours,
        "evidently": theirs,
        "speedup_compute": theirs["compute_seconds"] / ours["compute_seconds"],
        "speedup_process": theirs["process_seconds"] / ours["process_seconds"],
        "shifted_flagged": shifted <= flagged,
        "unshifted_flagged": sorted(flagged - shifted),
        "disagreements": disagreements,
    }
    write_results(result)
    print((RESULTS / "drift.md").read_text())


if __name__ == "__main__":
    main()
