"""Benchmark: start-up and footprint of `churnops predict` and `churnops serve`, base vs this tree.

Trains one champion (XGBoost) with the BASE code (so "after" also shows that models already in a
registry load faster), then, alternating the variants in every repetition so all see the same
machine load: (a) whole-process time of `churnops predict` on a 10-row file, (b) time from
`churnops serve --workers N` starting until GET /ready answers 200 from every worker (for each N
asked; the base, which has no /deployment to tell its workers apart, until its first 200), (c) peak
RSS and PSS of the serve process tree (all workers, their store writers and uvicorn's supervisor)
over a few requests, also per worker (tree / N) and per process. Variants: `base` (the named
baseline: the previous code path, a read-only worktree of the base commit), `ours` (this tree,
model cache warm: the usual start) and `ours-cold` (this tree, model cache emptied before every
run: the first start after a promotion, which downloads through MLflow and fills the cache).
CPU time (user + system) is reported beside wall time: on a shared machine it is the steadier of
the two. All run with this venv; only PYTHONPATH differs. The minimum and the median of the
repetitions are reported, with ratios base / variant, plus the top import costs of a 10-row
predict by package. Writes bench/results/startup.json and startup.md.

    .venv/bin/python bench/startup.py [--base <worktree>] [--repeat 5] [--workers 1 2]

Without --base, a worktree of BASELINE is made under --home.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The named baseline: the code path before the start-up work (#15).
BASELINE = "4249c17"
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
TRAIN = """
import sys
from pathlib import Path
from churnops.data.load import load_training_table
from churnops.data.sources import resolve_data_settings
from churnops.modeling.tracking import configure_tracking, ensure_experiment
from churnops.modeling.train import run_training
from churnops.settings import Settings

home = Path(sys.argv[1])
settings = Settings(home=str(home), tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
settings.training.budget_minutes = 0.01  # defaults only: what is measured is start-up
settings.training.candidates = ["xgboost"]
settings.data = resolve_data_settings(settings.data)
client = configure_tracking(settings)
frame, schema = load_training_table(settings.data)
run_training(frame, schema=schema, settings=settings, client=client,
             experiment_id=ensure_experiment(client, settings))
frame.drop(columns=[schema.target]).head(10).to_csv(home / "ten.csv", index=False)
"""


def _base_worktree(path: Path) -> Path:
    """A detached worktree of BASELINE at `path` (made once), so `make bench` needs no flag."""
    if not (path / "src").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), BASELINE],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path, src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        PYTHONPATH=str(src),
        CHURNOPS_HOME=str(home),
        CHURNOPS_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        DO_NOT_TRACK="true",
        CHURNOPS_SERVING__RATE_LIMIT_PER_MINUTE="0",
    )
    return env


def _variant_env(home: Path, src: Path, name: str) -> dict[str, str]:
    """Each variant its own prediction store and spool, the same registry and model."""
    env = _env(home, src)
    env["CHURNOPS_DATABASE_URL"] = f"sqlite:///{home / f'predictions-{name}.db'}"
    env["CHURNOPS_SERVING__SPOOL_PATH"] = str(home / f"spool-{name}.jsonl")
    return env


def _check_source(env: dict[str, str], src: Path) -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import churnops; print(churnops.__file__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found.startswith(str(src)):
        sys.exit(f"PYTHONPATH={src} imports churnops from {found}")


def _predict(env: dict[str, str], home: Path, name: str) -> dict[str, float]:
    """Wall time and CPU time (user + system) of one whole `churnops predict` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [str(VENV_BIN / "churnops"), "predict", str(home / "ten.csv"),
         "-o", str(home / f"out-{name}.csv")],
        env=env, capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"predict_seconds": wall, "predict_cpu_seconds": cpu}


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of the live process tree (exited helpers not counted)."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> tuple[float, float, list[tuple[str, float]]]:
    """(RSS, PSS) in MB summed over the process tree, and each process's (role, RSS)."""
    rss = pss = 0
    each = []
    for member in _tree(pid):
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
            command = Path(f"/proc/{member}/cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        member_rss = int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        rss += member_rss
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        each.append((_role(command, member == pid), member_rss / 1024))
    return rss / 1024, pss / 1024, each


def _role(command: str, is_root: bool) -> str:
    if "writer_process" in command:
        return "writer"
    if "resource_tracker" in command:
        return "tracker"
    if is_root and "multiprocessing" not in command:
        return "main"
    return "worker"


def _serve(env: dict[str, str], workers: int, record: dict[str, Any]) -> dict[str, float]:
    """Seconds until /ready is 200 from every worker, then peak tree RSS/PSS over a few
    requests."""
    import httpx

    from serve import every_worker_ready  # bench/serve.py: this script's folder is on sys.path

    port = _port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(VENV_BIN / "churnops"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        ready, ready_cpu = None, 0.0
        seen: set[int] = set()
        while ready is None and time.perf_counter() - started < 300:
            if proc.poll() is not None:
                raise RuntimeError(f"churnops serve exited with {proc.returncode}")
            try:
                with httpx.Client(base_url=base, timeout=5) as client:  # a new connection
                    if every_worker_ready(client, workers, seen):
                        ready = time.perf_counter() - started
                        ready_cpu = _cpu_seconds(proc.pid)
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        if ready is None:
            raise RuntimeError("churnops serve was not ready within 300 s")
        peak_rss = peak_pss = 0.0
        peak_role: dict[str, float] = {}
        for _ in range(20):
            response = httpx.post(base + "/predict", json=record, timeout=30)
            response.raise_for_status()
            rss, pss, each = _memory_mb(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            for role, value in each:
                peak_role[role] = max(peak_role.get(role, 0.0), value)
            time.sleep(0.05)
        return {
            "ready_seconds": ready,
            "ready_cpu_seconds": ready_cpu,
            "rss_mb": peak_rss,
            "pss_mb": peak_pss,
            "rss_per_worker_mb": peak_rss / workers,
            "pss_per_worker_mb": peak_pss / workers,
            "worker_rss_mb": peak_role.get("worker", peak_role.get("main", 0.0)),
            "writer_rss_mb": peak_role.get("writer", 0.0),
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _import_costs(env: dict[str, str], home: Path, top: int = 12) -> list[dict[str, Any]]:
    """Self import time of our 10-row predict, summed by top-level package (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import sys; from churnops.cli.main import app; sys.argv[0] = 'churnops'; app()",
         "predict", str(home / "ten.csv"), "-o", str(home / "out-importtime.csv")],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    totals: dict[str, int] = {}
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if found:
            package = found.group(2).split(".")[0]
            totals[package] = totals.get(package, 0) + int(found.group(1))
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked[:top]] + [
        {"package": "(all imports)", "self_ms": round(sum(totals.values()) / 1000, 1)}
    ]


VARIANTS = ("base", "ours", "ours-cold")


def _run_once(
    name: str, env: dict[str, str], home: Path, workers: list[int], record: dict[str, Any]
) -> dict[str, float]:
    if name == "ours-cold":
        shutil.rmtree(home / "model-cache", ignore_errors=True)
    measured = _predict(env, home, name)
    for count in workers:
        if name == "ours-cold":  # each start is a first start
            shutil.rmtree(home / "model-cache", ignore_errors=True)
        served = _serve(env, count, record)
        measured |= {f"{key}@{count}": value for key, value in served.items()}
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", type=Path, default=None,
        help=f"worktree of the base commit (default: one of {BASELINE} made under --home)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--home", type=Path, default=ROOT / ".churnops" / "bench-startup")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    base = args.base.resolve() if args.base is not None else _base_worktree(home / "base")
    sources = {"base": base / "src", "ours": ROOT / "src", "ours-cold": ROOT / "src"}
    envs = {name: _variant_env(home, src, name) for name, src in sources.items()}
    for name, src in sources.items():
        _check_source(envs[name], src)
    if not (home / "ten.csv").exists():
        subprocess.run(
            [sys.executable, "-c", TRAIN, str(home)], env=envs["base"], check=True, timeout=1800
        )
    import pandas as pd

    record = json.loads(pd.read_csv(home / "ten.csv").head(1).to_json(orient="records"))[0]
    # One untimed warm start of ours so that "ours" measures the usual (cached) start.
    _run_once("ours", envs["ours"], home, [1], record)
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in VARIANTS}
    for repetition in range(args.repeat):
        order = list(VARIANTS) if repetition % 2 == 0 else list(reversed(VARIANTS))
        if "ours" in order and "ours-cold" in order:  # warm must follow a run that filled it
            order.remove("ours")
            order.insert(order.index("ours-cold") + 1, "ours")
        for name in order:
            measured = _run_once(name, envs[name], home, args.workers, record)
            for key, value in measured.items():
                runs[name].setdefault(key, []).append(value)
            print(json.dumps({"variant": name, "repetition": repetition, **measured}), flush=True)
    best = {name: {key: min(values) for key, values in run.items()} for name, run in runs.items()}
    median = {
        name: {key: statistics.median(values) for key, values in run.items()}
        for name, run in runs.items()
    }
    report = {
        "workers": args.workers,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "base_commit": subprocess.run(
            ["git", "-C", str(base), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "ours_commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "best": best,
        "median": median,
        "ratio_base_over": {
            name: {
                key: best["base"][key] / best[name][key] for key in best[name] if best[name][key]
            }
            for name in VARIANTS
            if name != "base"
        },
        "runs": runs,
        "import_costs_ours": _import_costs(envs["ours"], home),
        "import_costs_base": _import_costs(envs["base"], home),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "startup.md").write_text(_markdown(report))
    print(_markdown(report))


def _labels(workers: list[int]) -> dict[str, tuple[str, str]]:
    labels = {
        "predict_seconds": ("`churnops predict`, 10 rows, whole process", "s"),
        "predict_cpu_seconds": ("the same, CPU time (user + system)", "s"),
    }
    for count in workers:
        labels |= {
            f"ready_seconds@{count}": (f"`churnops serve -w {count}` until /ready is 200", "s"),
            f"ready_cpu_seconds@{count}": ("the same, CPU time of the serve tree", "s"),
            f"rss_mb@{count}": ("serve process tree, peak RSS", "MB"),
            f"pss_mb@{count}": ("serve process tree, peak PSS", "MB"),
            f"rss_per_worker_mb@{count}": (f"RSS per worker (tree / {count})", "MB"),
            f"pss_per_worker_mb@{count}": (f"PSS per worker (tree / {count})", "MB"),
            f"worker_rss_mb@{count}": ("one worker process, RSS", "MB"),
            f"writer_rss_mb@{count}": ("one store-writer child, RSS", "MB"),
        }
    return labels


def _markdown(report: dict[str, Any]) -> str:
    best, median, ratio = report["best"], report["median"], report["ratio_base_over"]
    lines = [
        f"# Start-up benchmark (min [median] of {report['repeat']} alternating runs, "
        f"{report['cpus']} CPUs shared, load average {report['load_average'][0]:.1f}, "
        f"base {report['base_commit'][:8]}, this tree {report['ours_commit'][:8]})",
        "",
        "`ours`: this tree, model cache warm (every start after the first of a version); "
        "`ours-cold`: cache emptied before each run (the first start after a promotion).",
        "",
        "| measure | base | ours | base / ours | ours-cold | base / ours-cold |",
        "|---|---|---|---|---|---|",
    ]
    for key, (label, unit) in _labels(report["workers"]).items():
        if key not in best["ours"]:
            continue
        cells = [label]
        for name in VARIANTS:
            value = best[name].get(key, float("nan"))
            cells.append(f"{value:.2f} {unit} [{median[name].get(key, float('nan')):.2f}]")
            if name != "base":
                cells.append(f"{ratio[name].get(key, float('nan')):.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    spread = {
        key: max(values) - min(values) for key, values in report["runs"]["ours"].items() if values
    }
    lines += [
        "",
        "Noise (ours, max - min over the runs): "
        + ", ".join(
            f"{key} {spread[key]:.2f}"
            for key in ("predict_seconds", "predict_cpu_seconds")
            if key in spread
        )
        + ", "
        + ", ".join(
            f"{key} {value:.2f}" for key, value in spread.items() if key.startswith("ready")
        ),
    ]
    base_costs = {c["package"]: c["self_ms"] for c in report["import_costs_base"]}
    lines += [
        "",
        "Where the import time of a 10-row predict goes (self time by top-level package, one run):",
        "",
        "| package | this tree ms | base ms |",
        "|---|---|---|",
    ]
    for cost in report["import_costs_ours"]:
        lines.append(
            f"| {cost['package']} | {cost['self_ms']:.0f} | {base_costs.get(cost['package'], 0):.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
