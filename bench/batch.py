"""Batch-scoring benchmark: `churnops predict` against the MLflow baseline and two ceilings.

    .venv/bin/python bench/batch.py [--rows 2000000] [--big-rows 10000000]

Builds Parquet files by resampling the bundled data with numeric noise, trains an XGBoost champion
under bench/.work/ (once), then runs every measurement in its own child process under
`/usr/bin/time -v` (peak RSS) and writes bench/results/batch.json and batch.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results"
HOME = WORK / "home"
CHUNK = 100_000


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env |= {
        "CHURNOPS_HOME": str(HOME),
        "CHURNOPS_TRACKING_URI": f"sqlite:///{HOME / 'mlflow.db'}",
        # Children that load the model with MLflow directly must see the same registry (without
        # this they read ./mlflow.db in the working folder: another registry, maybe another model).
        "MLFLOW_TRACKING_URI": f"sqlite:///{HOME / 'mlflow.db'}",
        "CHURNOPS_DATABASE_URL": f"sqlite:///{HOME / 'predictions.db'}",
        "CHURNOPS_CONFIG": str(WORK / "absent.yaml"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    return env


def _settings() -> Any:
    from churnops.data.sources import resolve_data_settings
    from churnops.settings import Settings

    settings = Settings(home=str(HOME), tracking_uri=f"sqlite:///{HOME / 'mlflow.db'}")
    settings.database_url = f"sqlite:///{HOME / 'predictions.db'}"
    settings.training.candidates = ["xgboost"]
    settings.training.budget_minutes = 0.3
    settings.data = resolve_data_settings(settings.data)
    return settings


def ensure_champion() -> str:
    """Train an XGBoost champion into the bench home (once)."""
    from churnops.data.load import load_training_table
    from churnops.modeling.registry import alias_version
    from churnops.modeling.tracking import configure_tracking, ensure_experiment
    from churnops.modeling.train import run_training

    settings = _settings()
    client = configure_tracking(settings)
    name = settings.registry.model_name
    if alias_version(client, name, "champion") is None:
        frame, schema = load_training_table(settings.data)
        run_training(
            frame,
            schema=schema,
            settings=settings,
            client=client,
            experiment_id=ensure_experiment(client, settings),
        )
    return settings.champion_uri()


def make_parquet(path: Path, rows: int, seed: int = 7) -> None:
    """`rows` customers resampled from the demo data with noise on the numeric columns."""
    if path.exists() and _rows(path) == rows:
        return
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnops.datasets import demo_path

    demo = pd.read_csv(demo_path())
    rng = np.random.default_rng(seed)
    temp = path.with_suffix(".tmp")
    writer = None
    block = 1_000_000
    for start in range(0, rows, block):
        n = min(block, rows - start)
        sample = demo.iloc[rng.integers(0, len(demo), n)].reset_index(drop=True)
        sample["customer_id"] = [f"B{i:010d}" for i in range(start, start + n)]
        tenure = sample["tenure"] + rng.integers(-2, 3, n)
        sample["tenure"] = tenure.clip(lower=0)
        sample["monthly_charges"] = (sample["monthly_charges"] * rng.normal(1, 0.05, n)).round(2)
        sample["total_charges"] = (sample["total_charges"] * rng.normal(1, 0.05, n)).round(2)
        table = pa.Table.from_pandas(sample, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(temp, table.schema)
        writer.write_table(table, row_group_size=250_000)
    assert writer is not None
    writer.close()
    temp.replace(path)


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


# -- children: each prints one JSON line with its timed section ---------------------------------


def child_io(source: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    started = time.perf_counter()
    rows = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=250_000):
        rows += len(batch.to_pandas())
    return {"rows": rows, "seconds": time.perf_counter() - started}


def child_raw(source: str, model_uri: str) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from churnops.modeling.pyfunc import load_scorer

    scorer, _ = load_scorer(model_uri)
    frame = pd.read_parquet(source)
    matrix = scorer.encoder.encode_frame(frame).astype(np.float32)
    del frame
    booster: Any = getattr(scorer.predictor, "booster")  # noqa: B009 - XGBoost champion
    booster.set_param({"nthread": 2})
    booster.inplace_predict(matrix[:1000])
    started = time.perf_counter()
    booster.inplace_predict(matrix)
    return {"rows": len(matrix), "seconds": time.perf_counter() - started}


def child_tables(source: str, model_uri: str) -> dict[str, Any]:
    """The lookup tables (the batch scorer's predictor) on pre-encoded columns, like `raw`."""
    import numpy as np
    import pandas as pd

    from churnops.modeling.pyfunc import load_scorer
    from churnops.scoring.fastpath import ChunkEncoder
    from churnops.scoring.treetables import TreeTables

    scorer, _ = load_scorer(model_uri)
    frame = pd.read_parquet(source)
    encoder = ChunkEncoder(scorer.encoder, np.float32)
    numeric, codes = encoder.numeric(frame), encoder.codes(frame)
    del frame
    booster: Any = getattr(scorer.predictor, "booster")  # noqa: B009 - XGBoost champion
    started = time.perf_counter()
    tables = TreeTables.build(booster, scorer.encoder)
    built = time.perf_counter() - started
    assert tables is not None
    booster.set_param({"nthread": 2})
    sample = slice(0, 200_000)
    reference = booster.inplace_predict(encoder.assemble(numeric[:, sample], codes[:, sample]))
    worst = float(np.max(np.abs(tables.proba(numeric[:, sample], codes[:, sample]) - reference)))
    started = time.perf_counter()
    tables.proba(numeric, codes)
    return {
        "rows": numeric.shape[1],
        "seconds": time.perf_counter() - started,
        "build_seconds": built,
        "max_abs_diff_vs_booster": worst,
        "tables": len(tables.tables),
        "entries": tables.n_entries,
    }


def child_predict_booster(source: str, model_uri: str, output: str) -> dict[str, Any]:
    """The same streaming engine with the booster as predictor (tables switched off)."""
    from churnops.modeling.pyfunc import load_scorer
    from churnops.modeling.registry import model_identity
    from churnops.scoring.batch import BatchOptions, BatchScorer

    scorer, _ = load_scorer(model_uri)
    batch = BatchScorer(scorer, model_identity(model_uri), BatchOptions(tables=False))
    started = time.perf_counter()
    result = batch.run(source, output)
    wall = time.perf_counter() - started
    summary = result.summary
    return {
        "rows": summary.rows_read,
        "seconds": summary.duration_seconds,
        "wall": wall,
        "predictor": summary.predictor,
    }


def child_baseline(source: str, model_uri: str) -> dict[str, Any]:
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import pyarrow.parquet as pq

    from churnops.modeling.pyfunc import load_scorer

    scorer, _ = load_scorer(model_uri)
    pipeline = scorer.bundle.pipeline
    pipeline.named_steps["classifier"].set_params(n_jobs=2)
    mlflow.set_experiment("bench-baseline")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="pipeline",
            serialization_format="cloudpickle",  # skops refuses XGBoost types unless trusted
            pyfunc_predict_fn="predict_proba",
        )
    model = mlflow.pyfunc.load_model(info.model_uri)
    features = scorer.schema.feature_names
    started = time.perf_counter()
    rows = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK):
        frame = batch.to_pandas()
        model.predict(frame[features])
        rows += len(frame)
    return {"rows": rows, "seconds": time.perf_counter() - started}


def child_predict(source: str, model_uri: str, output: str) -> dict[str, Any]:
    from churnops.cli.main import app

    started = time.perf_counter()
    app(
        ["predict", source, "-o", output, "--model-uri", model_uri, "--json"], standalone_mode=False
    )
    wall = time.perf_counter() - started
    summary_path = Path(output).with_name(Path(output).stem + ".summary.json")
    summary = json.loads(summary_path.read_text())
    return {
        "rows": summary["rows_read"],
        "seconds": summary["duration_seconds"],
        "wall": wall,
        "predictor": summary.get("predictor"),
    }


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "io": child_io,
    "raw": child_raw,
    "tables": child_tables,
    "predict_booster": child_predict_booster,
    "baseline": child_baseline,
    "predict": child_predict,
}


def measure(kind: str, *args: str) -> dict[str, Any]:
    """Run one child under /usr/bin/time -v; its timed section plus peak RSS of the process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, *args]
    if Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-v", *command]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith('{"bench"')][-1]
    result: dict[str, Any] = json.loads(line)["bench"]
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    result["peak_rss_mb"] = round(int(peak.group(1)) / 1024, 1) if peak else None
    result["process_seconds"] = round(elapsed, 2)
    result["rows_per_second"] = round(result["rows"] / result["seconds"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--child", default=None)
    args, rest = parser.parse_known_args()
    if args.child:
        print(json.dumps({"bench": CHILDREN[args.child](*rest)}), flush=True)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.update(_env())
    model_uri = ensure_champion()
    source = WORK / f"customers_{args.rows}.parquet"
    big = WORK / f"customers_{args.big_rows}.parquet"
    make_parquet(source, args.rows)
    make_parquet(big, args.big_rows)
    out = str(WORK / "scored.parquet")
    runs = {
        "io": measure("io", str(source)),
        "raw": measure("raw", str(source), model_uri),
        "tables": measure("tables", str(source), model_uri),
        "baseline": measure("baseline", str(source), model_uri),
        "predict": measure("predict", str(source), model_uri, out),
        "predict_big": measure("predict", str(big), model_uri, out),
        "predict_booster": measure("predict_booster", str(source), model_uri, out),
    }
    ratios = {
        "predict_vs_raw_ceiling": runs["predict"]["rows_per_second"]
        / runs["raw"]["rows_per_second"],
        "predict_vs_mlflow_baseline": runs["predict"]["rows_per_second"]
        / runs["baseline"]["rows_per_second"],
        "predict_vs_io_ceiling": runs["predict"]["rows_per_second"] / runs["io"]["rows_per_second"],
        "predict_booster_vs_raw_ceiling": runs["predict_booster"]["rows_per_second"]
        / runs["raw"]["rows_per_second"],
        "tables_vs_raw_booster": runs["tables"]["rows_per_second"] / runs["raw"]["rows_per_second"],
        "peak_rss_big_vs_small": runs["predict_big"]["peak_rss_mb"]
        / runs["predict"]["peak_rss_mb"],
    }
    report = {
        "rows": args.rows,
        "big_rows": args.big_rows,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": os.getloadavg(),
        },
        "runs": runs,
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "targets": {"predict_vs_raw_ceiling": ">= 0.80", "peak_rss_big_vs_small": "<= 1.20"},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch.json").write_text(json.dumps(report, indent=2) + "\n")
    labels = {
        "io": "read Parquet only (IO ceiling)",
        "raw": "raw XGBoost on encoded float32 (compute ceiling)",
        "tables": "lookup tables on encoded columns (batch predictor)",
        "baseline": "mlflow.sklearn pyfunc, 100k chunks (baseline)",
        "predict": f"churnops predict, {args.rows:,} rows",
        "predict_big": f"churnops predict, {args.big_rows:,} rows",
        "predict_booster": "same engine, booster as predictor (tables off)",
    }
    lines = [
        f"# Batch scoring benchmark ({args.rows:,} rows, {os.cpu_count()} CPUs)",
        "",
        "| run | rows/s | timed s | process s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, run in runs.items():
        lines.append(
            f"| {labels[key]} | {run['rows_per_second']:,} | {run['seconds']:.2f} | "
            f"{run['process_seconds']:.1f} | {run['peak_rss_mb']} |"
        )
    tables = runs["tables"]
    lines += [
        "",
        f"Lookup tables: {tables['tables']} tables, {tables['entries']:,} entries, built in "
        f"{tables['build_seconds']:.2f} s; largest difference from the booster's probabilities "
        f"on 200,000 rows: {tables['max_abs_diff_vs_booster']:.1e}. `churnops predict` scored "
        f"with: {runs['predict'].get('predictor')}.",
    ]
    lines += ["", "| ratio | value | target |", "|---|---:|---|"]
    for key, value in report["ratios"].items():
        lines.append(f"| {key} | {value:.3f} | {report['targets'].get(key, '')} |")
    (RESULTS / "batch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
