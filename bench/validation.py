"""Benchmark: what validation adds to `churnops train` on the bundled data.

Each repetition trains twice as whole `churnops train --json` processes, alternating validation off
(`CHURNOPS_VALIDATION__ENABLED=false`, the baseline) and on, so both see the same machine load.
Each process gets a fresh home holding a champion (trained untimed with a tiny budget first), so
the gate compares with a champion and validation compares segments with it, as in real use.
Reported per variant: whole-process wall time, CPU time (user + system), peak RSS, the run's own
duration and the validation stage's seconds; the ratio on/off; the start-up cost of the stage
(Fairlearn's import on top of what training already imported) and of `churnops validate VERSION`.
Writes bench/results/validation.json and validation.md.

    .venv/bin/python bench/validation.py [--repeat 2] [--budget-minutes 2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
# Runs one command and prints its own rusage (so the peak RSS is that command's, not the bench's).
LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": done.returncode, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "maxrss_mb": usage.ru_maxrss / 1024, "stdout": done.stdout,
                  "stderr": done.stderr[-2000:]}))
"""
FAIRLEARN_IMPORT = """
import time
import pandas, sklearn.metrics, scipy.stats, mlflow  # already imported by a training run
started = time.perf_counter()
import fairlearn.metrics
print(time.perf_counter() - started)
"""


def _env(home: Path, *, validation: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
    env.update(
        CHURNOPS_HOME=str(home),
        CHURNOPS_VALIDATION__ENABLED="true" if validation else "false",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        DO_NOT_TRACK="true",
    )
    return env


def _measure(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], env=env, cwd=cwd,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    measured: dict[str, Any] = json.loads(out.stdout)
    if measured["rc"] not in (0, 1):
        raise RuntimeError(f"{args[:2]} exited {measured['rc']}: {measured['stderr']}")
    return measured


def _train_once(validation: bool, budget: float) -> dict[str, Any]:
    """A fresh home with a champion, then one timed `churnops train --json`."""
    churnops = str(VENV_BIN / "churnops")
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        home = Path(tmp)
        env = _env(home / "home", validation=validation)
        _measure([churnops, "train", "--budget-minutes", "0.01", "--json"], env, home)
        run = _measure([churnops, "train", "--budget-minutes", str(budget), "--json"], env, home)
        summary = json.loads(run["stdout"])
        result = {
            "wall_seconds": run["wall"],
            "cpu_seconds": run["cpu"],
            "peak_rss_mb": run["maxrss_mb"],
            "run_seconds": summary["duration_seconds"],
            "validation_seconds": (summary.get("validation") or {}).get("seconds"),
            "validation_status": (summary.get("validation") or {}).get("status"),
        }
        if validation:
            check = _measure([churnops, "validate", summary["version"], "-o", tmp], env, home)
            result["validate_command_seconds"] = check["wall"]
            result["validate_command_rc"] = check["rc"]
        return result


def _fairlearn_import_seconds(repeat: int) -> float:
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", FAIRLEARN_IMPORT], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeat)
    ]
    return min(times)


def _best(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return min(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--budget-minutes", type=float, default=2.0)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for i in range(args.repeat):
        for variant in ("off", "on"):
            measured = _train_once(variant == "on", args.budget_minutes)
            runs[variant].append(measured)
            print(f"repeat {i + 1} validation {variant}: {json.dumps(measured)}", flush=True)
    report = _report(runs, args, _fairlearn_import_seconds(5))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "validation.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "validation.md").write_text(_markdown(report))
    print(_markdown(report))


def _report(
    runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, fairlearn: float
) -> dict[str, Any]:
    best = {
        variant: {
            key: _best(found, key)
            for key in (
                "wall_seconds",
                "cpu_seconds",
                "peak_rss_mb",
                "run_seconds",
                "validation_seconds",
                "validate_command_seconds",
            )
        }
        for variant, found in runs.items()
    }
    on, off = best["on"], best["off"]
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "budget_minutes": args.budget_minutes,
        "repeat": args.repeat,
        "runs": runs,
        "best": best,
        "ratio_wall_on_off": on["wall_seconds"] / off["wall_seconds"],
        "ratio_cpu_on_off": on["cpu_seconds"] / off["cpu_seconds"],
        "validation_share_of_run": on["validation_seconds"] / on["run_seconds"],
        "fairlearn_import_seconds": fairlearn,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _markdown(report: dict[str, Any]) -> str:
    on, off = report["best"]["on"], report["best"]["off"]
    rows = [
        ("whole `churnops train` process, wall (s)", off["wall_seconds"], on["wall_seconds"]),
        ("whole process, CPU user + system (s)", off["cpu_seconds"], on["cpu_seconds"]),
        ("peak RSS (MB)", off["peak_rss_mb"], on["peak_rss_mb"]),
        ("the run's own duration (s)", off["run_seconds"], on["run_seconds"]),
        ("validation stage (s)", None, on["validation_seconds"]),
        ("`churnops validate VERSION`, whole process (s)", None, on["validate_command_seconds"]),
    ]
    lines = [
        "# Validation: cost on `churnops train` (bundled Telco data)",
        "",
        f"Budget {report['budget_minutes']} min, all candidates, {report['repeat']} repetitions "
        f"alternating off/on (best of each), {report['machine']['cpus']} CPUs shared, "
        f"{report['at']}.",
        "",
        "| measure | validation off | validation on |",
        "| --- | ---: | ---: |",
        *[f"| {name} | {_fmt(a)} | {_fmt(b)} |" for name, a, b in rows],
        "",
        f"- on/off, wall: **{report['ratio_wall_on_off']:.3f}**; CPU: "
        f"**{report['ratio_cpu_on_off']:.3f}** (target: under 1.10)",
        f"- validation stage / run duration: {report['validation_share_of_run']:.1%}",
        f"- start-up: Fairlearn's import on top of training's: "
        f"{report['fairlearn_import_seconds'] * 1000:.0f} ms",
        "",
        "Every run (the spread between identical runs is the machine's, shared by other jobs; the",
        "tuning budget caps wall time, so the stage's own seconds are the direct measure):",
        "",
        "| validation | wall (s) | CPU (s) | peak RSS (MB) | run (s) | stage (s) | status |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *[
            f"| {variant} | {_fmt(r['wall_seconds'])} | {_fmt(r['cpu_seconds'])} | "
            f"{_fmt(r['peak_rss_mb'])} | {_fmt(r['run_seconds'])} | "
            f"{_fmt(r['validation_seconds'])} | {r['validation_status'] or '–'} |"
            for variant, found in report["runs"].items()
            for r in found
        ],
        "",
    ]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.2f}"


if __name__ == "__main__":
    main()
