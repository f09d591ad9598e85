"""Soak benchmark with faults: `churnops serve --workers 2` on Postgres under steady load.

Measures the server's capacity first (wrk, closed loop), then holds 80% of one worker's share of
it (wrk with a per-connection delay, open-ish loop) through phases, in order: steady (the
baseline every other phase is compared with), a worker killed with SIGKILL, a store writer child
killed, Postgres unreachable, Redis unreachable (rate limits go through it), a model promotion and
a rollback (the API polls the champion alias). Postgres and Redis are reached through TCP proxies
on loopback that the benchmark cuts and restores. Per phase: requests, 2xx, errors, p50/p99 and
ratios to the steady phase; at the end predictions answered (2xx) = stored (none lost, none
duplicated), spool size, peak RSS of the whole process tree, start-up time, whole-process time.
Writes bench/results/soak.json and soak.md.

    .venv/bin/python bench/soak.py              # about 3 minutes: 15 s phases, 10 s outages
    .venv/bin/python bench/soak.py --long       # about 10 minutes: 80 s phases, 30 s outages

Loopback only; every phase is bounded in time and the benchmark stops by itself.
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
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CHURNOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKERS = 2


class Proxy:
    """A TCP forwarder on loopback that can be cut (connections reset, new ones refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _port()
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            with suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                self._server.close()
            self._server = None
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()
            self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def _cmdline(pid: int) -> str:
    with suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with suppress(OSError):
            for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class RssSampler:
    """Peak RSS of the server's whole process tree and peak spooled predictions (from /metrics),
    sampled every 0.5 s; `phase_spool_peak` restarts with each phase."""

    def __init__(self, pid: int, base: str) -> None:
        self.pid, self.base, self.peak_mb, self._stop = pid, base, 0.0, threading.Event()
        self.phase_spool_peak = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_mb = max(self.peak_mb, _rss_mb(_tree(self.pid)))
            spooled = _metric(self.base, "churnops_store_spooled_records")
            if spooled == spooled:  # not NaN: the server answered
                self.phase_spool_peak = max(self.phase_spool_peak, spooled)

    def stop(self) -> None:
        self._stop.set()


# Every request gets its own X-Request-ID (run, thread, counter); each 2xx answer's echoed id is
# appended to a file per thread, so answered and stored predictions are compared id by id.
WRK_LUA = """
wrk.method = "POST"
wrk.body = %(body)s
local counter, file = 0, nil
local threads = 0
tid = 0  -- global: thread:set() below gives each thread its own
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  file = io.open(%(folder)s .. "/ok-" .. %(run)s .. "-" .. tid .. ".txt", "a")
end
function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json",
                   ["X-Request-ID"] = %(run)s .. "-" .. tid .. "-" .. counter}
  return wrk.format(nil, nil, headers, wrk.body)
end
function response(status, headers, body)
  if status >= 200 and status < 300 then
    file:write((headers["x-request-id"] or headers["X-Request-ID"] or "?") .. "\\n")
    file:flush()
  end
end
"""


def _wrk(
    url: str,
    body: str,
    *,
    connections: int,
    seconds: float,
    delay_ms: float | None,
    answered: Path,
    run: str,
) -> dict[str, Any]:
    lua = WRK_LUA % {
        "body": json.dumps(body),
        "folder": json.dumps(str(answered)),
        "run": json.dumps(run),
    }
    if delay_ms is not None:  # each connection waits this long between requests: a set rate
        lua += f"function delay() return {delay_ms:.3f} end\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run(
            ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--timeout", "10s", "--latency", "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout  # fmt: skip
    finally:
        Path(script.name).unlink()

    def millis(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    latency = {m[0]: millis(m[1]) for m in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = sum(int(x) for x in socket_errors.groups()) if socket_errors else 0
    bad = int(non_2xx.group(1)) if non_2xx else 0
    return {
        "requests": requests,
        "ok": requests - bad,
        "non_2xx": bad,
        "socket_errors": errors,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency.get("50"),
        "p90_ms": latency.get("90"),
        "p99_ms": latency.get("99"),
    }


def _metric(base: str, name: str) -> float:
    import httpx

    with suppress(httpx.HTTPError):
        text = httpx.get(base + "/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )
    return float("nan")


def _served_version(base: str) -> str:
    """The model version /ready says is served (e.g. "version 3")."""
    import httpx

    with suppress(httpx.HTTPError, KeyError, ValueError):
        check = httpx.get(base + "/ready", timeout=5).json()["checks"]["model"]
        return "version " + str(check).rsplit("version ", 1)[1]
    return "?"


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 180) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError("churnops serve exited during start-up")
        with suppress(httpx.HTTPError):
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.1)
    raise RuntimeError("churnops serve was not ready in time")


class Faults:
    """What each phase does to the running system, at a third of the phase."""

    def __init__(
        self, server: subprocess.Popen[bytes], pg: Proxy, redis: Proxy, outage: float, settings: Any
    ) -> None:
        self.server, self.pg, self.redis, self.outage, self.settings = (
            server,
            pg,
            redis,
            outage,
            settings,
        )
        self.notes: dict[str, str] = {}

    def workers(self) -> list[int]:
        # forks of the supervisor (its command line), not its writer children's
        return [p for p in _children(self.server.pid) if "api.supervisor" in _cmdline(p)]

    def kill_worker(self) -> None:
        victim = self.workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.notes["kill_worker"] = f"SIGKILL to worker pid {victim}"

    def kill_writer(self) -> None:
        writers = [
            pid
            for pid in _tree(self.server.pid)
            if "writer" in _cmdline(pid) and pid != self.server.pid
        ]
        if not writers:
            self.notes["kill_writer"] = "no writer child found"
            return
        os.kill(writers[0], signal.SIGKILL)
        self.notes["kill_writer"] = (
            f"SIGKILL to writer child pid {writers[0]} ({len(writers)} running)"
        )

    def _cut(self, proxy: Proxy, name: str) -> None:
        proxy.down()
        time.sleep(self.outage)
        proxy.up()
        self.notes[name] = (
            f"unreachable for {self.outage:g} s (connections reset, new ones refused)"
        )

    def postgres_down(self) -> None:
        self._cut(self.pg, "postgres_down")

    def redis_down(self) -> None:
        self._cut(self.redis, "redis_down")

    def promote(self) -> None:
        from churnops.modeling.registry import CHAMPION, alias_version, promote, register_version
        from churnops.modeling.tracking import configure_tracking

        client = configure_tracking(self.settings)
        name = self.settings.registry.model_name
        current = alias_version(client, name, CHAMPION)
        assert current is not None and current.source and current.run_id
        # A new version of the same artifacts: the API sees the alias move and swaps models.
        new = register_version(
            client, name=name, model_uri=current.source, run_id=current.run_id, tags={}
        )
        promote(client, name=name, version=new.version, why="soak benchmark: promotion under load")
        self.notes["promote"] = f"champion {current.version} -> {new.version}"

    def rollback(self) -> None:
        from churnops.modeling.registry import rollback
        from churnops.modeling.tracking import configure_tracking

        client = configure_tracking(self.settings)
        back = rollback(
            client,
            name=self.settings.registry.model_name,
            why="soak benchmark: rollback under load",
        )
        self.notes["rollback"] = f"champion back to {back.version}"


def _create_database() -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    name = f"churnops_soak_{uuid.uuid4().hex[:8]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, dsn


def _drop_database(name: str, dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _stored(name: str, dsn: str) -> list[str]:
    """The request id of every stored prediction (one entry per row)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(dsn).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT request_id FROM predictions").fetchall()
    return [str(row[0]) for row in rows]


def _answered(folder: Path) -> list[str]:
    """The request id of every 2xx answer wrk received."""
    return [line for path in sorted(folder.glob("ok-*.txt")) for line in path.read_text().split()]


def main() -> None:
    started_all = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--long", action="store_true", help="80 s phases and 30 s outages (~10 min)"
    )
    parser.add_argument("--phase-seconds", type=float, default=None)
    parser.add_argument("--outage-seconds", type=float, default=None)
    parser.add_argument("--home", type=Path, default=ROOT / ".churnops" / "bench")
    args = parser.parse_args()
    phase_seconds = args.phase_seconds or (80.0 if args.long else 15.0)
    outage = args.outage_seconds or (30.0 if args.long else min(10.0, phase_seconds / 2))
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (apt-get install -y wrk)")
    sys.path.insert(0, str(ROOT / "bench"))
    from serve import _train  # the same cached champion as bench/serve.py

    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings, _ = _train(home)
    from churnops.modeling.pyfunc import load_scorer

    scorer, _ = load_scorer(settings.champion_uri())
    record = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in scorer.bundle.input_example[0].items()
    }
    body = json.dumps(record)

    pg_target = (
        POSTGRES_URL.split("@")[1].split(":")[0],
        int(POSTGRES_URL.split(":")[-1].split("/")[0]),
    )
    redis_target = (
        REDIS_URL.split("//")[1].split(":")[0],
        int(REDIS_URL.rsplit(":", 1)[1].split("/")[0]),
    )
    pg, redis = Proxy(pg_target), Proxy(redis_target)
    pg.up()
    redis.up()
    db_name, dsn = _create_database()
    work = Path(tempfile.mkdtemp(prefix="churnops-soak-"))
    from sqlalchemy.engine import make_url

    store_url = make_url(POSTGRES_URL).set(host="127.0.0.1", port=pg.port, database=db_name)
    port = _port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        CHURNOPS_HOME=str(work),
        CHURNOPS_TRACKING_URI=settings.resolved_tracking_uri(),
        MLFLOW_TRACKING_URI=settings.resolved_tracking_uri(),
        CHURNOPS_DATABASE_URL=store_url.render_as_string(hide_password=False),
        CHURNOPS_REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        CHURNOPS_SERVING__RATE_LIMIT_PER_MINUTE="100000000",  # on, so every request asks Redis
        CHURNOPS_SERVING__RELOAD_INTERVAL_SECONDS="2",
        CHURNOPS_SERVING__SPOOL_PATH=str(work / "spool.jsonl"),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(VENV_BIN / "churnops"), "serve", "--port", str(port), "--workers", str(WORKERS)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    sampler = RssSampler(server.pid, base)
    faults = Faults(server, pg, redis, outage, settings)
    phases: list[dict[str, Any]] = []
    ids = work / "answered"
    ids.mkdir()
    try:
        startup_s = _wait_ready(base, server)
        _wrk(
            base + "/predict",
            body,
            connections=4,
            seconds=3,
            delay_ms=None,
            answered=ids,
            run="warmup",
        )
        capacity = _wrk(
            base + "/predict",
            body,
            connections=4,
            seconds=8,
            delay_ms=None,
            answered=ids,
            run="capacity",
        )
        target_rps = 0.8 * capacity["rps"] / WORKERS
        connections = 8
        # A connection waits for its answer, then `delay`: take the typical answer time off.
        delay_ms = max(0.0, connections * 1000.0 / target_rps - (capacity["p50_ms"] or 0.0))
        plan: list[tuple[str, Any]] = [
            ("steady", None),
            ("kill_worker", faults.kill_worker),
            ("kill_writer", faults.kill_writer),
            ("postgres_down", faults.postgres_down),
            ("redis_down", faults.redis_down),
            ("promote", faults.promote),
            ("rollback", faults.rollback),
        ]
        for name, fault in plan:
            sampler.phase_spool_peak = 0.0
            thread = None
            if fault is not None:
                thread = threading.Timer(phase_seconds / 3, fault)
                thread.start()
            run = _wrk(
                base + "/predict",
                body,
                connections=connections,
                seconds=phase_seconds,
                delay_ms=delay_ms,
                answered=ids,
                run=name,
            )
            if thread is not None:
                thread.join()
            run |= {
                "phase": name,
                "fault": faults.notes.get(name, "none"),
                "spool_peak": sampler.phase_spool_peak,
                "spooled_after": _metric(base, "churnops_store_spooled_records"),
                "served_after": _served_version(base),
                "rss_mb_after": round(_rss_mb(_tree(server.pid)), 1),
            }
            print(json.dumps(run), flush=True)
            phases.append(run)
        # Let the writers replay what was spooled, then stop the server: SIGTERM flushes.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _metric(base, "churnops_store_spooled_records") > 0:
            time.sleep(0.5)
        made = _metric(base, "churnops_predictions_total")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        sampler.stop()
        log.close()
    spool_bytes = sum(p.stat().st_size for p in work.glob("spool*.jsonl*") if p.is_file())
    stored_ids = _stored(db_name, dsn)
    answered_ids = _answered(ids)
    stored_set = set(stored_ids)
    _drop_database(db_name, dsn)
    pg.down()
    redis.down()
    report = {
        "workers": WORKERS,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "model": scorer.bundle.candidate,
        "store": "postgres (through a TCP proxy)",
        "phase_seconds": phase_seconds,
        "outage_seconds": outage,
        "capacity": capacity,
        "target_rps": round(target_rps, 1),
        "connections": connections,
        "baseline_phase": "steady",
        "phases": phases,
        "startup_seconds": round(startup_s, 2),
        "peak_rss_mb": round(sampler.peak_mb, 1),
        "answered_2xx": len(answered_ids),
        "answered_distinct_ids": len(set(answered_ids)),
        "lost": len(set(answered_ids) - stored_set),
        "stored_not_seen_answered": len(stored_set - set(answered_ids)),
        "made_counter_at_end": made,
        "stored": len(stored_ids),
        "stored_distinct_ids": len(stored_set),
        "spool_bytes_left": spool_bytes,
        "whole_process_seconds": round(time.perf_counter() - started_all, 1),
    }
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "soak-long" if args.long else "soak"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stem}.md").write_text(_markdown(report))
    print(_markdown(report))


def _markdown(report: dict[str, Any]) -> str:
    base = next(p for p in report["phases"] if p["phase"] == report["baseline_phase"])

    def ratio(value: float | None, of: float | None) -> str:
        return f"{value / of:.2f}x" if value and of else "-"

    lines = [
        f"# Soak with faults ({report['workers']} workers, {report['cpus']} CPUs shared with wrk, "
        f"model {report['model']}, store {report['store']})",
        "",
        f"Capacity (closed loop, 4 connections): {report['capacity']['rps']:,.0f} rps. Load: "
        f"{report['target_rps']:,.0f} rps target (80% of one worker's share) on "
        f"{report['connections']} connections, {report['phase_seconds']:g} s per phase, outages "
        f"{report['outage_seconds']:g} s. Baseline for the ratios: the `{report['baseline_phase']}` phase.",
        "",
        "| phase | fault | requests | 2xx | non-2xx | socket errors | rps | p50 ms | p99 ms | p99 vs baseline | rps vs baseline | spool peak / after | serving after | tree RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["phases"]:
        lines.append(
            f"| {p['phase']} | {p['fault']} | {p['requests']:,} | {p['ok']:,} | {p['non_2xx']:,} | "
            f"{p['socket_errors']:,} | {p['rps']:,.0f} | {p['p50_ms'] or 0:.2f} | {p['p99_ms'] or 0:.2f} | "
            f"{ratio(p['p99_ms'], base['p99_ms'])} | {ratio(p['rps'], base['rps'])} | "
            f"{p['spool_peak']:.0f} / {p['spooled_after']:.0f} | {p['served_after']} | "
            f"{p['rss_mb_after']:.0f} |"
        )
    answered, stored, distinct = (
        report["answered_2xx"],
        report["stored"],
        report["stored_distinct_ids"],
    )
    lines += [
        "",
        f"- Answered 2xx, counted by request id (warm-up, capacity probe and phases): {answered:,}. "
        f"Stored after shutdown: {stored:,} rows, {distinct:,} distinct request ids "
        f"(duplicated: {stored - distinct}).",
        f"- Lost (answered 2xx, not stored): {report['lost']:,}. Stored without an answer seen by "
        f"the client (in flight when wrk stopped a run, or on the killed worker's connections): "
        f"{report['stored_not_seen_answered']:,}. Server's own prediction counter at the end "
        f"(the killed worker's last second unpublished): {report['made_counter_at_end']:,.0f}.",
        f"- Spool left after shutdown: {report['spool_bytes_left']:,} bytes.",
        f"- Start-up to /ready: {report['startup_seconds']:.2f} s. Peak RSS of the process tree "
        f"(CLI, {report['workers']} workers, writer children): {report['peak_rss_mb']:.0f} MB.",
        f"- Whole benchmark process: {report['whole_process_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
