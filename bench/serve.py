"""Benchmark: `churnops serve` vs `mlflow models serve` vs a bare FastAPI endpoint, with wrk.

Trains (or reuses) one champion, logs the same fitted sklearn pipeline with `mlflow.sklearn`
(what users do today), starts the three servers with the same worker count on loopback, and loads
each with wrk (Lua POST script) for 1- and 100-customer requests at 4 and 32 connections.
Prediction logging stays on for churnops. Writes bench/results/serve.json and serve.md
(serve-N-workers.* with --workers N).

    .venv/bin/python bench/serve.py [--workers 1] [--duration 8] [--home .churnops/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent


def bare_app() -> Any:
    """The ceiling: FastAPI on the same stack returning a constant."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict[str, Any]:
        return {"churn_probability": 0.5, "will_churn": False, "risk_level": "medium"}

    return app


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float = 180.0, method: str = "GET", body: bytes = b"") -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.request(
                method, url, content=body or None, timeout=5,
                headers={"content-type": "application/json"},
            )  # fmt: skip
            if response.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def _train(home: Path) -> tuple[Any, str]:
    """A champion in `home` (trained once) and an mlflow.sklearn model of the same pipeline."""
    import mlflow
    import mlflow.sklearn

    sys.path.insert(0, str(ROOT))
    from churnops.data.load import load_training_table
    from churnops.data.sources import resolve_data_settings
    from churnops.modeling.pyfunc import load_scorer
    from churnops.modeling.tracking import configure_tracking, ensure_experiment
    from churnops.modeling.train import run_training
    from churnops.settings import Settings

    settings = Settings(home=str(home), tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    settings.training.budget_minutes = 0.05
    settings.training.candidates = ["xgboost"]
    settings.data = resolve_data_settings(settings.data)
    client = configure_tracking(settings)
    marker = home / "sklearn_model_uri"
    if not marker.exists():
        experiment_id = ensure_experiment(client, settings)
        frame, schema = load_training_table(settings.data)
        run_training(
            frame, schema=schema, settings=settings, client=client, experiment_id=experiment_id
        )
        scorer, _ = load_scorer(settings.champion_uri())
        with mlflow.start_run(experiment_id=experiment_id, run_name="mlflow-sklearn-baseline"):
            info = mlflow.sklearn.log_model(
                scorer.bundle.pipeline,
                name="sklearn-pipeline",
                serialization_format="cloudpickle",  # skops refuses XGBoost types by default
            )
        marker.write_text(info.model_uri)
    return settings, marker.read_text().strip()


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _wrk(url: str, body: str, *, connections: int, duration: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout  # fmt: skip
    Path(script.name).unlink()

    def millis(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    latency = {m[0]: millis(m[1]) for m in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency.get("50"),
        "p90_ms": latency.get("90"),
        "p99_ms": latency.get("99"),
        "requests": requests,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--home", type=Path, default=ROOT / ".churnops" / "bench")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (apt-get install -y wrk)")
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings, sklearn_uri = _train(home)
    from churnops.modeling.pyfunc import load_scorer

    scorer, _ = load_scorer(settings.champion_uri())
    record = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in scorer.bundle.input_example[0].items()
    }
    features = {k: v for k, v in record.items() if k != scorer.schema.id_column}
    bodies = {
        "churnops": {
            1: json.dumps(record),
            100: json.dumps({"customers": [record] * 100}),
        },
        "mlflow": {
            1: json.dumps({"dataframe_records": [features]}),
            100: json.dumps({"dataframe_records": [features] * 100}),
        },
        "bare": {1: json.dumps(record)},
    }
    for stale in home.glob("predictions.db*"):
        stale.unlink()
    db_url = f"sqlite:///{home / 'predictions.db'}"
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        MLFLOW_TRACKING_URI=settings.resolved_tracking_uri(),
        CHURNOPS_HOME=str(home),
        CHURNOPS_TRACKING_URI=settings.resolved_tracking_uri(),
        CHURNOPS_DATABASE_URL=db_url,
        CHURNOPS_SERVING__RATE_LIMIT_PER_MINUTE="0",
        CHURNOPS_SERVING__SPOOL_PATH=str(home / "spool.jsonl"),
        CHURNOPS_SERVING__MAX_BATCH_SIZE="10000",
        MLFLOW_DISABLE_TELEMETRY="true",
        OMP_NUM_THREADS="1",  # the same for every server (churnops serve sets it itself anyway)
        DO_NOT_TRACK="true",
    )
    workers = str(args.workers)
    ports = {name: _port() for name in ("churnops", "mlflow", "bare")}
    commands = {
        "churnops": [str(VENV_BIN / "churnops"), "serve", "--port", str(ports["churnops"]),
                     "--workers", workers, "--model-uri", settings.champion_uri()],
        "mlflow": [str(VENV_BIN / "mlflow"), "models", "serve", "-m", sklearn_uri, "-p",
                   str(ports["mlflow"]), "-h", "127.0.0.1", "--env-manager", "local", "-w", workers],
        "bare": [str(VENV_BIN / "uvicorn"), "--app-dir", str(ROOT / "bench"), "--factory",
                 "serve:bare_app", "--port", str(ports["bare"]), "--workers", workers,
                 "--log-level", "warning"],
    }  # fmt: skip
    paths = {"churnops": {1: "/predict", 100: "/predict/batch"}, "mlflow": {1: "/invocations", 100: "/invocations"}, "bare": {1: "/predict"}}  # fmt: skip
    results: list[dict[str, Any]] = []
    scored = 0
    for name in ("bare", "churnops", "mlflow"):
        server = Server(name, commands[name], env, ports[name])
        try:
            base = f"http://127.0.0.1:{ports[name]}"
            _wait_http(base + paths[name][1], method="POST", body=bodies[name][1].encode())
            for size, body in bodies[name].items():
                url = base + paths[name][size]
                _wrk(url, body, connections=4, duration=2)  # warm-up
                for connections in (4, 32):
                    run = _wrk(url, body, connections=connections, duration=args.duration)
                    run |= {"server": name, "customers": size, "connections": connections}
                    print(json.dumps(run), flush=True)
                    results.append(run)
            if name == "churnops":
                if args.workers > 1:  # every worker publishes its counts once a second
                    from churnops.api.metrics import PUBLISH_EVERY_SECONDS

                    time.sleep(3 * PUBLISH_EVERY_SECONDS)
                scored = _predictions_counted(base)
        finally:
            server.stop()  # SIGTERM: churnops writes everything still queued before it exits
    from churnops.store import PredictionStore

    store = PredictionStore(db_url)
    stored = store.count_predictions()
    store.close()
    served = sum(
        (r["requests"] - r["non_2xx"]) * r["customers"]
        for r in results
        if r["server"] == "churnops"
    )
    report = {
        "workers": args.workers,
        "duration_seconds": args.duration,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "model": scorer.bundle.candidate,
        "prediction_logging": True,
        "scored_predictions": scored,
        "stored_predictions": stored,
        "served_predictions_measured": served,
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "serve" if args.workers == 1 else f"serve-{args.workers}-workers"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stem}.md").write_text(_markdown(report))
    print(_markdown(report))


def _predictions_counted(base: str) -> int:
    """Every prediction the server made (its own counter, warm-ups and probes included)."""
    import httpx

    text = httpx.get(base + "/metrics", timeout=10).text
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("churnops_predictions_total{")
        )
    )


def _find(
    results: list[dict[str, Any]], server: str, size: int, conns: int
) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in results
            if (r["server"], r["customers"], r["connections"]) == (server, size, conns)
        ),
        None,
    )


def _markdown(report: dict[str, Any]) -> str:
    results = report["results"]
    lines = [
        f"# Serving benchmark ({report['workers']} worker(s), {report['cpus']} CPUs shared with wrk, "
        f"{report['duration_seconds']} s per run, model {report['model']}, prediction logging on)",
        "",
        "| customers/request | connections | churnops rps | churnops p50/p90/p99 ms | mlflow rps "
        "| mlflow p50/p90/p99 ms | ratio | bare FastAPI rps | churnops / bare |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in (1, 100):
        for conns in (4, 32):
            ours, theirs = (
                _find(results, "churnops", size, conns),
                _find(results, "mlflow", size, conns),
            )
            bare = _find(results, "bare", 1, conns) if size == 1 else None
            if ours is None or theirs is None:
                continue

            def lat(r: dict[str, Any]) -> str:
                return f"{r['p50_ms']:.2f} / {r['p90_ms']:.2f} / {r['p99_ms']:.2f}"

            ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else float("inf")
            lines.append(
                f"| {size} | {conns} | {ours['rps']:.0f} | {lat(ours)} | {theirs['rps']:.0f} | "
                f"{lat(theirs)} | {ratio:.1f}x | {bare['rps']:.0f} | "
                f"{ours['rps'] / bare['rps']:.2f} |"
                if bare
                else f"| {size} | {conns} | {ours['rps']:.0f} | {lat(ours)} | {theirs['rps']:.0f} | "
                f"{lat(theirs)} | {ratio:.1f}x | - | - |"
            )
    ours, theirs, bare = (_find(results, n, 1, 4) for n in ("churnops", "mlflow", "bare"))
    if ours and theirs and bare:
        checks = [
            ("1 customer, 4 connections: throughput >= 20x mlflow models serve",
             ours["rps"] / theirs["rps"] >= 20, f"{ours['rps'] / theirs['rps']:.1f}x"),
            ("1 customer, 4 connections: p99 < 5 ms", ours["p99_ms"] < 5, f"{ours['p99_ms']:.2f} ms"),
            ("1 customer, 4 connections: >= 0.5 of the bare FastAPI ceiling",
             ours["rps"] / bare["rps"] >= 0.5, f"{ours['rps'] / bare['rps']:.2f}"),
        ]  # fmt: skip
        lines += ["", "| target | met | measured |", "|---|---|---|"]
        lines += [f"| {what} | {'yes' if ok else 'NO'} | {value} |" for what, ok, value in checks]
    scored, stored = report["scored_predictions"], report["stored_predictions"]
    lines += [
        "",
        f"Predictions made by churnops during the run (its own counter, warm-ups included): "
        f"{scored:,}; stored in the prediction store after shutdown: {stored:,} "
        f"({'equal' if scored == stored else 'DIFFERENT'}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
