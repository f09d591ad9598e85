"""App benchmark: the Customer page, from pressing Predict to the result on screen (server time).

A champion is trained once (XGBoost, small budget) into bench/.work/app-customer. `churnops serve`
starts as its own process (its time until GET /ready answers 200 and its peak RSS are reported).
The Customer page then runs under Streamlit's AppTest in this process: the first render (form
built from GET /model) is timed, then Predict is pressed N times and each script run (request to
the API, gauge, reasons chart, recommendations) is timed. The baseline in the same run is the API
alone: the same customer POSTed to /predict with httpx, so the ratio is what the page adds.
Results: bench/results/app-customer.{json,md}.

    .venv/bin/python bench/app_customer.py [--presses 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "app-customer"
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "src" / "churnops" / "dashboard" / "pages" / "customer.py"
KEY = "bench-app-customer-key-0123456789"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {
        "CHURNOPS_HOME": str(WORK),
        "CHURNOPS_TRACKING_URI": f"sqlite:///{WORK / 'mlflow.db'}",
        "CHURNOPS_DATABASE_URL": f"sqlite:///{WORK / 'predictions.db'}",
    }


def _train() -> None:
    if (WORK / "trained").exists():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "churnops"),
        "train",
        "--budget-minutes",
        "0.05",
    ]
    env = {**os.environ, **_env(), "CHURNOPS_TRAINING__CANDIDATES": '["xgboost"]'}
    subprocess.run(command, env=env, check=True, capture_output=True)
    (WORK / "trained").write_text("yes")


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
        except (OSError, StopIteration):
            continue
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in children.read_text().split()]
    return total / 1024


def _start_api(port: int) -> tuple[subprocess.Popen[bytes], float]:
    import httpx

    from churnops.apikeys import hash_key

    env = {**os.environ, **_env(), "CHURNOPS_SERVING__API_KEY_HASHES": json.dumps([hash_key(KEY)])}
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "churnops"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = started + 180
    while time.perf_counter() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"churnops serve exited with {process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise SystemExit("churnops serve did not become ready in 180 s")


def _measure(api: str, presses: int) -> dict[str, Any]:
    import httpx
    from streamlit.testing.v1 import AppTest

    os.environ["CHURNOPS_APP__API_URL"] = api
    os.environ["CHURNOPS_API_KEY"] = KEY
    started = time.perf_counter()
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    first_render = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    predict_runs = []
    for _ in range(presses):
        button = next(b for b in at.button if b.label == "Predict")
        button.click()
        started = time.perf_counter()
        at = at.run()
        predict_runs.append(time.perf_counter() - started)
        assert not at.exception and any(m.label == "Risk level" for m in at.metric)
    customer = httpx.get(
        f"{api}/model", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ).json()["input_example"]
    api_calls = []
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as client:
        for _ in range(presses):
            started = time.perf_counter()
            client.post(f"{api}/predict", json=customer).raise_for_status()
            api_calls.append(time.perf_counter() - started)
    page_ms = statistics.median(predict_runs) * 1000
    api_ms = statistics.median(api_calls) * 1000
    return {
        "first_render_seconds": first_render,
        "predict_to_result_ms_median": page_ms,
        "predict_to_result_ms_p90": sorted(predict_runs)[int(0.9 * (presses - 1))] * 1000,
        "api_predict_ms_median": api_ms,
        "page_over_api_ratio": page_ms / api_ms,
        "app_process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presses", type=int, default=30)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    whole = time.perf_counter()
    _train()
    port = _port()
    process, ready_seconds = _start_api(port)
    try:
        figures = _measure(f"http://127.0.0.1:{port}", args.presses)
        figures["api_ready_seconds"] = ready_seconds
        figures["api_tree_rss_mb"] = _tree_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    figures["whole_process_seconds"] = time.perf_counter() - whole
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_1min": os.getloadavg()[0],
        "presses": args.presses,
        **figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "app-customer.json").write_text(json.dumps(result, indent=2))
    rows = [
        ("Predict -> result on screen, server time (median)", "predict_to_result_ms_median", "ms"),
        ("the same, p90", "predict_to_result_ms_p90", "ms"),
        ("baseline: POST /predict alone (median)", "api_predict_ms_median", "ms"),
        ("page / API", "page_over_api_ratio", "x"),
        ("page first render (form from GET /model)", "first_render_seconds", "s"),
        ("API start-up: `churnops serve` until /ready is 200", "api_ready_seconds", "s"),
        ("API process tree RSS", "api_tree_rss_mb", "MB"),
        ("app (AppTest) process peak RSS", "app_process_peak_rss_mb", "MB"),
        ("whole benchmark process", "whole_process_seconds", "s"),
    ]
    lines = [
        "# App: Customer page, Predict to result",
        "",
        f"{args.presses} presses under Streamlit's AppTest against a live `churnops serve` (1 "
        f"worker) on loopback; machine {result['machine']}, load average "
        f"{result['load_average_1min']:.2f}. Target: under 100 ms of server time.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {label} | {result[key]:.2f} {unit} |" for label, key, unit in rows],
        "",
    ]
    (RESULTS / "app-customer.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
