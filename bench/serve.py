"""Benchmark: `churnops serve` vs `mlflow models serve` vs a bare FastAPI endpoint, with wrk.

Trains (or reuses) one champion, logs the same fitted sklearn pipeline with `mlflow.sklearn`
(what users do today), starts the three servers with the same worker count on loopback, and loads
each with wrk (Lua POST script) for 1- and 100-customer requests at 4 and 32 connections.
Prediction logging stays on for churnops. Writes bench/results/serve.json and serve.md
(serve-N-workers.* with --workers N).

    .venv/bin/python bench/serve.py [--workers 1] [--duration 8] [--home .churnops/bench]

With --deployment: one churnops server at one worker, side by side in the same run: the champion
alone, shadow on every request (a second registered version of the same artifact, so both sides
cost the same), a 50% canary over distinct customer ids, and the champion alone again; plus the
canary routing cost per request measured in-process, start-up, peak memory and whole-process
time. Writes bench/results/serve-deployment.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def every_worker_ready(client: Any, workers: int, seen: set[int]) -> bool:
    """GET /ready is 200 from every worker of a churnops server: each answer's worker pid from
    GET /deployment is added to `seen`. Call with a new connection (`client`) each time, so the
    kernel hands them to either worker. A tree without /deployment (a baseline from before it)
    counts its first 200, which flatters that baseline."""
    if client.get("/ready").status_code != 200:
        return False
    answer = client.get("/deployment")
    if answer.status_code != 200:
        return True
    seen.add(int(answer.json()["worker"]["pid"]))
    return len(seen) >= workers


def _ready_seconds(
    server: Server, base: str, *, workers: int, probe: tuple[str, str, bytes]
) -> float:
    """Seconds from the server's start until it answers. churnops: until GET /ready is 200 from
    every worker (each worker's pid read over the same connection from GET /deployment);
    the others: until `probe` (method, path, body) gets a 2xx."""
    import httpx

    seen: set[int] = set()
    method, path, body = probe
    while time.perf_counter() - server.started < 300:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
        try:
            with httpx.Client(base_url=base, timeout=5) as client:  # a new connection each time
                if server.name != "churnops":
                    answer = client.request(method, path, content=body or None,
                                            headers={"content-type": "application/json"})  # fmt: skip
                    if answer.is_success:
                        return time.perf_counter() - server.started
                elif every_worker_ready(client, workers, seen):
                    return time.perf_counter() - server.started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{server.name} was not ready within 300 s")


def _tree_memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS (MB) of a server's whole process tree: supervisor, workers, writer children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    members, todo = [], [pid]
    while todo:
        current = todo.pop()
        members.append(current)
        todo.extend(children.get(current, []))
    rss = pss = 0
    for member in members:
        with contextlib.suppress(OSError, AttributeError):
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
            rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
            pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    return {
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
        "processes": len(members),
    }


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.started = time.perf_counter()
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


def _wrk(
    url: str, body: str, *, connections: int, duration: int, lua: str | None = None
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n' + (lua or "")
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
    parser.add_argument("--deployment", action="store_true", help="shadow/canary vs champion")
    parser.add_argument("--rounds", type=int, default=5, help="--deployment: shadow runs")
    parser.add_argument("--routing-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.routing_child:
        _routing_child(args.home.resolve())
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (apt-get install -y wrk)")
    if args.deployment:
        deployment_bench(args)
        return
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
    footprint: dict[str, dict[str, float]] = {}
    scored = 0
    for name in ("bare", "churnops", "mlflow"):
        server = Server(name, commands[name], env, ports[name])
        try:
            base = f"http://127.0.0.1:{ports[name]}"
            probe = ("GET", "/ping", b"") if name == "mlflow" else ("POST", paths[name][1], bodies[name][1].encode())  # fmt: skip
            ready = _ready_seconds(server, base, workers=args.workers, probe=probe)
            for size, body in bodies[name].items():
                url = base + paths[name][size]
                _wrk(url, body, connections=4, duration=2)  # warm-up
                if size == 1:  # in service: model loaded, every worker warm
                    footprint[name] = {
                        "ready_seconds": round(ready, 2),
                        **_tree_memory_mb(server.proc.pid),
                    }
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
        "footprint": footprint,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "serve" if args.workers == 1 else f"serve-{args.workers}-workers"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stem}.md").write_text(_markdown(report))
    print(_markdown(report))


# -- deployments: shadow and canary beside the champion alone -----------------------------------

Scenario = tuple[str, str, dict[str, Any], str, str | None]  # label, mode, options, body, lua
CANARY_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.gsub(wrk.body, '"__ID__"', '"c-' .. counter .. '-' .. math.random(1e9) .. '"')
  return wrk.format(nil, nil, nil, body)
end
"""


def _challenger_version(settings: Any) -> str:
    """A second registered version of the champion's artifact (same cost on both sides)."""
    from churnops.modeling.registry import alias_version
    from churnops.modeling.tracking import configure_tracking

    client = configure_tracking(settings)
    name = settings.registry.model_name
    champion = alias_version(client, name, "champion")
    assert champion is not None
    versions = client.search_model_versions(f"name='{name}'")
    others = [v for v in versions if v.version != champion.version and v.source == champion.source]
    if others:
        return str(others[0].version)
    created = client.create_model_version(name, str(champion.source), run_id=champion.run_id)
    return str(created.version)


def _set_policy(
    db_url: str, settings: Any, mode: str, challenger: str, base: str | None = None, **options: Any
) -> None:
    from churnops.deployment import controller
    from churnops.store import PredictionStore
    from churnops.store.deployment import read_policy

    store = PredictionStore(db_url)
    store.create()
    try:
        current = read_policy(store, settings.registry.model_name)
        if current is not None and current.active:
            controller.rollback(store, model_name=settings.registry.model_name, reason="bench")
        if mode != "none":
            policy = controller.new_policy(
                model_name=settings.registry.model_name, mode=mode, champion_version=None,
                challenger_version=challenger, settings=settings.deployment, auto=False,
                **options,
            )  # fmt: skip
            controller.start(store, policy)
    finally:
        store.close()
    if base is not None:  # until the worker applies it (loading the challenger takes a while)
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            view = httpx.get(base + "/deployment", timeout=10).json()["worker"]
            if view["mode"] == mode and (
                mode == "none" or view["challenger_version"] == challenger
            ):
                break
            time.sleep(0.2)
    time.sleep(1.0)


def _count(db_url: str, sql: str) -> int:
    from sqlalchemy import text

    from churnops.store import PredictionStore

    store = PredictionStore(db_url)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        store.close()


def _peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, in MB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def _routing_harness(settings: Any) -> tuple[Callable[[], None], Any, Any]:
    """In-process: `score_records` for one customer at a time (real, different customers: a
    canary's constant-score check compares their scores); the rollout whose route decides and a
    50% canary route (both variants the same model, the salt a new deployment gets)."""
    from types import SimpleNamespace

    from churnops.api.metrics import ApiMetrics
    from churnops.api.reload import ModelManager, Target
    from churnops.api.rollout import Rollout, Route
    from churnops.api.service import score_records
    from churnops.data.load import load_training_table
    from churnops.deployment.routing import cutoff, new_salt
    from churnops.modeling.pyfunc import load_scorer
    from churnops.modeling.registry import alias_version
    from churnops.modeling.tracking import configure_tracking

    manager = ModelManager(
        model_uri=settings.champion_uri(), loader=load_scorer, resolve_alias=None,
        max_batch_size=100, default_name=settings.registry.model_name,
    )  # fmt: skip
    client = configure_tracking(settings)
    version = alias_version(client, settings.registry.model_name, "champion").version  # type: ignore[union-attr]
    uri = f"models:/{settings.registry.model_name}/{version}"
    model = manager.load(Target(uri, settings.registry.model_name, str(version), None))
    metrics = ApiMetrics()
    rollout = Rollout(
        settings, load=lambda u: model, store=lambda: None, metrics=metrics, writer=lambda: None,
        reload_champion=lambda: None, champion=lambda: model,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    service = SimpleNamespace(rollout=rollout, metrics=metrics, writer=None)
    frame, schema = load_training_table(settings.data)
    columns = [c for c in (schema.id_column, *schema.feature_names) if c]
    customers: list[dict[str, Any]] = [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame[columns].dropna().head(2_000).to_dict("records")
    ]
    counter = iter(range(10**9))

    def one() -> None:
        row = dict(customers[next(counter) % len(customers)])
        score_records(service, model, [row], request_id=None)  # type: ignore[arg-type]

    canary_route = Route(mode="canary", challenger=model, salt=new_salt(), cut=cutoff(50))
    return one, rollout, canary_route


ROUTING_PAIRS = 60  # back-to-back pairs (no deployment, canary) per canary share
ROUTING_CALLS = 1_000  # requests in each half of a pair


def _routing_overhead_us(settings: Any) -> dict[str, Any]:
    """One customer through `score_records` with no deployment and under a canary that sends
    0%, 100% and 50% of customers to the challenger (the same model object), and the routing
    decision alone; thread CPU time, µs per request. At 0% and 100% the canary's own work (hash,
    per-variant metrics) runs on one path; at 50% each request takes one of two at random, which
    also costs the processor's caches and branch prediction."""
    import timeit

    import numpy as np

    from churnops.api.rollout import Route
    from churnops.deployment.routing import cutoff

    one, rollout, canary_route = _routing_harness(settings)
    plain = Route()

    # CPU time of this thread, not wall time: on a shared machine the wall clock also counts the
    # time other processes hold the core (it swung the difference from -9 to +25 µs).
    def run(route: Any) -> float:
        rollout.route = route
        started = time.thread_time_ns()
        for _ in range(ROUTING_CALLS):
            one()
        return (time.thread_time_ns() - started) / ROUTING_CALLS / 1000

    for _ in range(3 * ROUTING_CALLS):  # warm-up
        one()
    by_share: dict[str, dict[str, float]] = {}
    alone_best, canary_best = float("inf"), float("inf")
    for share in (0, 100, 50):
        route = Route(
            mode="canary", challenger=canary_route.challenger, salt=canary_route.salt,
            cut=cutoff(share),
        )  # fmt: skip
        alone_runs, canary_runs, differences = [], [], []
        for k in range(ROUTING_PAIRS):  # which half goes first alternates
            if k % 2:
                canary_runs.append(run(route))
                alone_runs.append(run(plain))
            else:
                alone_runs.append(run(plain))
                canary_runs.append(run(route))
            differences.append(canary_runs[-1] - alone_runs[-1])
        by_share[str(share)] = {
            "median_pair_difference_us": round(float(np.median(differences)), 2),
            "p10_difference_us": round(
                float(np.percentile(canary_runs, 10) - np.percentile(alone_runs, 10)), 2
            ),
        }
        alone_best = min(alone_best, *alone_runs)
        if share == 50:
            canary_best = min(canary_runs)
    decision = min(
        timeit.repeat(
            lambda: canary_route.to_challenger("7590-VHVEG"),
            number=100_000, repeat=5, timer=time.thread_time,
        )
    ) / 100_000 * 1e6  # fmt: skip
    return {
        "score_records_alone_us": round(alone_best, 2),
        "score_records_canary_us": round(canary_best, 2),
        "canary_overhead_us": by_share["50"]["median_pair_difference_us"],
        "canary_overhead_by_share": by_share,
        "routing_decision_us": round(decision, 3),
    }


INSTRUCTION_CALLS = 2_000  # requests counted per route under callgrind


def _routing_child(home: Path) -> None:
    """Run under callgrind by `_routing_instructions`: for each route, warm up, say READY, wait,
    score INSTRUCTION_CALLS customers, say DONE, wait (the parent counts in between)."""
    from churnops.api.rollout import Route

    settings, _ = _train(home)
    one, rollout, canary_route = _routing_harness(settings)
    for name, route in (("none", Route()), ("canary50", canary_route)):
        rollout.route = route
        for _ in range(200):
            one()
        print("READY", name, flush=True)
        sys.stdin.readline()
        for _ in range(INSTRUCTION_CALLS):
            one()
        print("DONE", name, flush=True)
        sys.stdin.readline()


def _routing_instructions(home: Path, alone_us: float) -> dict[str, float] | None:
    """Instructions per request with no deployment and under a 50% canary, counted by callgrind
    (the same count on a busy machine as on a quiet one, unlike CPU time); the overhead also in
    µs at this machine's time per instruction of the plain request, and the cache misses and
    branch mispredictions callgrind simulates. None without valgrind."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return None
    out = home / "callgrind"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    child = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes",
         "--branch-sim=yes",
         f"--callgrind-out-file={out / 'cg.out'}", sys.executable, __file__,
         "--routing-child", "--home", str(home)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    pid = str(child.pid)
    counts: dict[str, float] = {}
    for line in child.stdout:
        word, _, name = line.strip().partition(" ")
        if word == "READY":
            subprocess.run(["callgrind_control", "-i", "on", pid], capture_output=True, check=True)
            subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=True)
        elif word == "DONE":
            subprocess.run(["callgrind_control", "-d", name, pid], capture_output=True, check=True)
            subprocess.run(["callgrind_control", "-i", "off", pid], capture_output=True, check=True)
            dumped = sorted(out.glob("cg.out.*"), key=lambda p: p.stat().st_mtime)[-1]
            text = dumped.read_text()
            events = re.search(r"^events: (.+)$", text, re.M)
            totals = re.search(r"^(?:summary|totals): ([\d ]+)$", text, re.M)
            assert events is not None and totals is not None, dumped
            for event, value in zip(events.group(1).split(), totals.group(1).split(), strict=True):
                counts[f"{name}:{event}"] = int(value) / INSTRUCTION_CALLS
        else:
            continue
        child.stdin.write("\n")
        child.stdin.flush()
    child.wait(timeout=600)
    alone, canary = counts["none:Ir"], counts["canary50:Ir"]
    extra = canary - alone

    def more(event: str) -> int:
        return round(counts[f"canary50:{event}"] - counts[f"none:{event}"])

    return {
        "instructions_alone": round(alone),
        "instructions_canary": round(canary),
        "canary_overhead_instructions": round(extra),
        "canary_overhead_share": round(extra / alone, 4),
        "canary_overhead_us_at_this_rate": round(alone_us * extra / alone, 2),
        # simulated by callgrind: what the instruction count does not show (each costs cycles)
        "canary_more_icache_misses": more("I1mr"),
        "canary_more_dcache_misses": more("D1mr") + more("D1mw"),
        "canary_more_branch_mispredictions": more("Bcm") + more("Bim"),
    }


def deployment_bench(args: argparse.Namespace) -> None:
    """Champion alone vs shadow on every request vs a 50% canary, in one run at one worker."""
    began = time.perf_counter()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings, _ = _train(home)
    challenger = _challenger_version(settings)
    from churnops.modeling.pyfunc import load_scorer

    scorer, _ = load_scorer(settings.champion_uri())
    record = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in scorer.bundle.input_example[0].items()
    }
    id_column = scorer.schema.id_column
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
        CHURNOPS_DEPLOYMENT__EVALUATE_INTERVAL_SECONDS="0",
        MLFLOW_DISABLE_TELEMETRY="true",
        OMP_NUM_THREADS="1",
        DO_NOT_TRACK="true",
    )
    port = _port()
    argv = [str(VENV_BIN / "churnops"), "serve", "--port", str(port), "--workers", "1"]
    _set_policy(db_url, settings, "none", challenger)
    started = time.perf_counter()
    server = Server("churnops", argv, env, port)
    url = f"http://127.0.0.1:{port}/predict"
    body = json.dumps(record)
    canary_body = json.dumps({**record, id_column: "__ID__"}) if id_column else body
    runs: list[dict[str, Any]] = []
    try:
        _wait_http(url, method="POST", body=body.encode())
        startup = time.perf_counter() - started
        _wrk(url, body, connections=4, duration=2)  # warm-up
        champion: Scenario = ("champion", "none", {}, body, None)
        shadow: Scenario = ("shadow", "shadow", {"sample_rate": 1.0}, body, None)
        canary: Scenario = ("canary-50", "canary", {"steps": [50.0]}, canary_body, CANARY_LUA)
        # Each shadow and canary run between two champion runs: compared with its neighbours,
        # so the load the machine carries from other work drifts out of the ratio.
        plan: list[Scenario] = [champion]
        for _ in range(args.rounds):
            plan += [shadow, champion]
        # wrk's per-request Lua (a new customer id each time) costs wrk CPU on this machine: the
        # canary is compared with the champion under the same script.
        champion_ids: Scenario = ("champion-ids", "none", {}, canary_body, CANARY_LUA)
        plan += [champion_ids, canary, champion_ids]
        for label, mode, options, payload, lua in plan:
            _set_policy(db_url, settings, mode, challenger, f"http://127.0.0.1:{port}", **options)
            before = _count(db_url, "select count(*) from shadow_predictions")
            run = _wrk(url, payload, connections=4, duration=args.duration, lua=lua)
            time.sleep(1.5)  # the writer's flush interval
            run |= {
                "scenario": label,
                "shadow_rows": _count(db_url, "select count(*) from shadow_predictions") - before,
            }
            print(json.dumps(run), flush=True)
            runs.append(run)
        peak = _peak_rss_mb(server.proc.pid)
    finally:
        server.stop()
    overhead = _routing_overhead_us(settings)
    instructions = _routing_instructions(home, overhead["score_records_alone_us"])
    rps_ratios, p99_ratios = [], []
    for i, run in enumerate(runs):
        if run["scenario"] != "shadow":
            continue
        prev, nxt = runs[i - 1], runs[i + 1]
        rps_ratios.append(run["rps"] / ((prev["rps"] + nxt["rps"]) / 2))
        p99_ratios.append(run["p99_ms"] / ((prev["p99_ms"] + nxt["p99_ms"]) / 2))
    canary_ratios = [
        run["rps"] / ((runs[i - 1]["rps"] + runs[i + 1]["rps"]) / 2)
        for i, run in enumerate(runs)
        if run["scenario"] == "canary-50"
    ]
    report = {
        "workers": 1,
        "duration_seconds": args.duration,
        "canary_throughput_ratio": round(statistics.median(canary_ratios), 3),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "model": scorer.bundle.candidate,
        "challenger_version": challenger,
        "startup_seconds": round(startup, 2),
        "peak_rss_mb_server_and_writer": round(peak, 1),
        "whole_process_seconds": round(time.perf_counter() - began, 1),
        "routing": overhead,
        "routing_instructions": instructions,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "shadow_throughput_ratios": [round(r, 3) for r in rps_ratios],
        "shadow_p99_ratios": [round(r, 3) for r in p99_ratios],
        "shadow_throughput_ratio": round(statistics.median(rps_ratios), 3),
        "shadow_p99_ratio": round(statistics.median(p99_ratios), 3),
        "results": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve-deployment.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "serve-deployment.md").write_text(_deployment_markdown(report))
    print(_deployment_markdown(report))


def _deployment_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Deployment benchmark (1 worker, {report['cpus']} CPUs shared with wrk, "
        f"{report['duration_seconds']} s per run, model {report['model']}, 4 connections, "
        "prediction logging on)",
        "",
        "| scenario | rps | p50 / p90 / p99 ms | non-2xx | shadow scores stored |",
        "|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['scenario']} | {r['rps']:.0f} | {r['p50_ms']:.2f} / {r['p90_ms']:.2f} / "
            f"{r['p99_ms']:.2f} | {r['non_2xx']} | {r['shadow_rows']:,} |"
        )
    routing = report["routing"]
    checks = [
        ("shadow on every request: throughput >= 80% of the champion alone (median of rounds)",
         report["shadow_throughput_ratio"] >= 0.8, f"{report['shadow_throughput_ratio']:.2f}"),
        ("shadow on every request: p99 <= 1.2x the champion alone (median of rounds)",
         report["shadow_p99_ratio"] <= 1.2, f"{report['shadow_p99_ratio']:.2f}x"),
        ("canary routing adds < 5 µs per request (in-process, score_records, CPU time)",
         routing["canary_overhead_us"] < 5, f"{routing['canary_overhead_us']:.2f} µs"),
    ]  # fmt: skip
    counted = report.get("routing_instructions")
    if counted:
        checks.append(
            ("canary routing adds < 5 µs per request (callgrind instructions at this machine's "
             "time per instruction of the plain request)",
             counted["canary_overhead_us_at_this_rate"] < 5,
             f"{counted['canary_overhead_us_at_this_rate']:.2f} µs "
             f"({counted['canary_overhead_instructions']:,} instructions)"),
        )  # fmt: skip
    lines += ["", "| target | met | measured |", "|---|---|---|"]
    lines += [f"| {what} | {'yes' if ok else 'NO'} | {value} |" for what, ok, value in checks]
    lines += [
        "",
        "Each shadow run is compared with the champion runs just before and after it (same "
        f"server, same run): throughput ratios {report['shadow_throughput_ratios']}, p99 ratios "
        f"{report['shadow_p99_ratios']}; 1-minute load average at the end "
        f"{report['load_average_1m']} on {report['cpus']} CPUs. The 50% canary (a new customer id "
        f"per request) against the champion under the same wrk script: throughput ratio "
        f"{report['canary_throughput_ratio']}.",
        f"In-process, one customer through `score_records`: {routing['score_records_alone_us']} µs "
        f"with no deployment, {routing['score_records_canary_us']} µs under a 50% canary (thread "
        f"CPU time, best runs; the overhead is the median of {ROUTING_PAIRS} back-to-back pairs of "
        f"{ROUTING_CALLS:,} requests); the routing decision alone (CRC-32, the hash of a new "
        f"deployment's salt) {routing['routing_decision_us']} µs.",
        *(
            [
                "The same overhead by the share the canary sends to the challenger (the same "
                "model object on both paths; median pair difference / difference of the 10th "
                "percentiles): "
                + ", ".join(
                    f"{share}%: {v['median_pair_difference_us']} / {v['p10_difference_us']} µs"
                    for share, v in routing["canary_overhead_by_share"].items()
                )
                + ". At 0% and 100% every request takes one path, at 50% one of two at random. "
                "Where the two estimates disagree by more than the overhead itself, the machine's "
                "noise in that run was larger than the overhead."
            ]
            if "canary_overhead_by_share" in routing
            else []
        ),
        *(
            [
                f"Counted by callgrind ({INSTRUCTION_CALLS:,} requests per route, the same count "
                f"whatever else the machine does): {counted['instructions_alone']:,} instructions "
                f"a request with no deployment, {counted['instructions_canary']:,} under a 50% "
                f"canary: {counted['canary_overhead_instructions']:,} more "
                f"({100 * counted['canary_overhead_share']:.1f}% of the request). Its simulated "
                f"caches add {counted['canary_more_icache_misses']:,} first-level "
                f"instruction-cache misses, {counted['canary_more_dcache_misses']:,} data-cache "
                f"misses and {counted['canary_more_branch_mispredictions']:,} branch "
                "mispredictions a request: cycles the instruction count does not show."
            ]
            if counted
            else []
        ),
        f"Start-up to the first answer: {report['startup_seconds']} s; peak memory of the server "
        f"and its store writer (VmHWM): {report['peak_rss_mb_server_and_writer']} MB; whole "
        f"benchmark process: {report['whole_process_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


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
    footprint = report.get("footprint", {})
    if footprint:
        n = report["workers"]
        lines += [
            "",
            f"Start-up and footprint ({n} worker(s); ready: from the command until it answers, "
            "churnops until GET /ready is 200 from every worker; memory: the whole process tree "
            "after a 2 s warm-up: supervisor, workers, store writers):",
            "",
            "| server | ready after | RSS | RSS per worker | PSS per worker | processes |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("churnops", "mlflow", "bare"):
            if name in footprint:
                f = footprint[name]
                lines.append(
                    f"| {name} | {f['ready_seconds']:.2f} s | {f['rss_mb']:.0f} MB | "
                    f"{f['rss_mb'] / n:.0f} MB | {f['pss_mb'] / n:.0f} MB | {f['processes']:.0f} |"
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
        mine = report.get("footprint", {}).get("churnops")
        if mine:
            n = report["workers"]
            limit = 3.0 if n == 1 else 4.0
            checks += [
                (f"churnops ready (every worker) in under {limit:.0f} s", mine["ready_seconds"] < limit,
                 f"{mine['ready_seconds']:.2f} s"),
                ("churnops RSS per worker (its share of supervisor and writers) < 300 MB",
                 mine["rss_mb"] / n < 300, f"{mine['rss_mb'] / n:.0f} MB"),
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
