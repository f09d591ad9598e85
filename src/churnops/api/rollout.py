"""Each worker's side of a deployment: read the policy, load the challenger, route, shadow.

The policy lives in the prediction store (`deployment_policy`), so every worker and replica
routes the same way; each worker re-reads it every `deployment.poll_interval_seconds` (one
primary-key SELECT) and swaps one immutable `Route` object, which a request reads once.

- canary: a customer's bucket (keyed hash of their id, else of the caller's API key) below the
  weight's cutoff is answered by the challenger; about 1 µs a request.
- blue-green: both models loaded and warm; `live` says which one answers.
- shadow: after the answer is handed to the server, the request's records are collected for
  30 ms and then scored with the challenger: on the event loop, a few records at a time between
  requests, when a probe at load time found the challenger fast; otherwise (and for large
  batches) on a thread. A score later than the policy's `timeout_ms` is discarded;
  a challenger that raises, runs out of time or returns one constant score is counted, and at
  `fault_limit` faults this worker stops shadowing and rolls the deployment back (recorded with
  the reason). Nothing the challenger does reaches the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnops.api.reload import LoadedModel
from churnops.deployment import controller
from churnops.deployment.routing import BUCKETS, CRC_MIX, Bucketer, cutoff
from churnops.deployment.thresholds import Thresholds
from churnops.settings import Settings
from churnops.store.deployment import Policy, add_counters, claim_evaluation, read_policy

logger = logging.getLogger(__name__)

MAX_SHADOW_QUEUE = 10_000  # records waiting for the challenger; beyond this they are dropped
# Records for the challenger are handed to its thread at most this often. Waking the thread
# after every request made it take the GIL at each of the event loop's I/O calls: at one worker
# throughput fell to 40% of the champion alone. Each wake still costs hand-offs of the GIL (the
# thread waits out the 5 ms switch interval and needs a free core): every 30 ms instead of 10
# kept 0.82-0.84 of the champion's throughput instead of 0.72-0.78 (median of 3 rounds, twice,
# same server) and a third of the thread's CPU a request. 30 ms of the default 100 ms bound.
SHADOW_BATCH_SECONDS = 0.03
# Scoring on the thread still cost p99 1.3-1.6x of the champion alone at one worker: with both
# cores busy (the loop, wrk, the writer), every GIL hand-off waits for the OS to give the thread
# a core, and the loop waits with it. A fast challenger is therefore scored on the loop itself:
# no hand-offs. "Fast" is judged when the challenger is loaded (best of PROBE_RUNS scorings of
# INLINE_CHUNK copies of its example under INLINE_PROBE_LIMIT) and again by every slice:
# INLINE_STRIKES slices in a row slower than INLINE_DEMOTE_AFTER send the challenger back to the
# thread. In a row, because one slow slice is as often the OS giving the core to another process,
# or a full garbage collection, as the challenger itself. Jobs of more than INLINE_CHUNK records
# (batches) go to the thread.
INLINE_CHUNK = 64
PROBE_RUNS = 5
INLINE_PROBE_LIMIT = 0.002
INLINE_DEMOTE_AFTER = 0.005
INLINE_STRIKES = 3
# The loop scores the shadow in slices of about this long, one between two turns of the loop: a
# request that arrives meanwhile waits for one slice at most. The tail follows the slice: at one
# worker, p99 over the champion alone was 1.34x with slices of 64 customers (~0.45 ms), 1.20x
# with 16, 1.10x with 8 (~75 us) and 1.08x with 4; throughput 0.97, 0.90, 0.87, 0.84, since
# each call has a fixed cost (median of 6 rounds each, same machine and hour). The slice's
# records are counted from the probe's time per record. A job is never split: a batch request's
# records (at most INLINE_CHUNK) make one slice. One queue and one callback for the loop, so two
# hand-overs never score at once; jobs already past the time bound when their turn comes are
# dropped unscored (their scores would be discarded). Rows reach the writer as one line when
# the queue is empty, or every LOOP_ROWS_PER_LINE rows under a backlog, not one per slice.
INLINE_SLICE_SECONDS = 0.00006
LOOP_ROWS_PER_LINE = 512
LOAD_ATTEMPTS = 3  # a challenger that cannot be loaded this many polls in a row is rolled back


@dataclass(frozen=True)
class Route:
    """What the hot path reads (one attribute read a request)."""

    mode: str = "none"
    challenger: LoadedModel | None = None
    salt: str = ""
    cut: int = 0  # canary: buckets below this go to the challenger
    live_challenger: bool = False  # blue-green
    sample_rate: float = 1.0
    timeout: float = 0.1  # seconds
    policy: Policy | None = None
    bucket: Bucketer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bucket", Bucketer(self.salt))

    @property
    def splits(self) -> bool:
        """Some requests are answered by the challenger."""
        return self.challenger is not None and self.mode in ("canary", "blue-green")

    def to_challenger(self, key: str | None) -> bool:
        if self.mode == "blue-green":
            return self.live_challenger
        if key is None or self.cut <= 0:
            return False
        if self.cut >= BUCKETS:
            return True
        # Bucketer.__call__ inline: calling an instance runs a second interpreter frame (~0.1 µs)
        bucketer = self.bucket
        if bucketer.keyed is None:
            crc = zlib.crc32(key.encode(), bucketer.seed)
            return ((crc * CRC_MIX) & 0xFFFFFFFF) * BUCKETS >> 32 < self.cut
        hasher = bucketer.keyed.copy()
        hasher.update(key.encode())
        return int.from_bytes(hasher.digest(), "big") % BUCKETS < self.cut


@dataclass
class Faults:
    """What this worker saw the challenger do wrong (counted; flushed to the policy row)."""

    errors: int = 0
    timeouts: int = 0
    dropped: int = 0
    constant: int = 0
    champion_errors: int = 0
    same_score_run: int = 0
    last_score: float | None = None
    last_witness: Any = None
    reason: str | None = None  # set once the fault limit is reached: roll back
    deployment_id: str | None = None  # the deployment these faults belong to
    pending: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)
            self.pending[name] = self.pending.get(name, 0) + n

    def take_pending(self) -> dict[str, int]:
        with self.lock:
            pending, self.pending = self.pending, {}
        return pending


@dataclass
class ShadowJob:
    model: LoadedModel
    records: list[dict[str, Any]]
    prediction_ids: list[str]
    created_at: str
    submitted: float  # perf_counter when the answer was ready
    champion_probability: float | None = None  # of the last record (for the constant check)


class Rollout:
    """One worker's deployment state: the route in force, the shadow thread, the poller."""

    def __init__(
        self,
        settings: Settings,
        *,
        load: Callable[[str], LoadedModel],
        store: Callable[[], Any],
        metrics: Any,
        writer: Callable[[], Any],
        reload_champion: Callable[[], Awaitable[Any]],
        champion: Callable[[], LoadedModel | None],
        promote_alias: controller.PromoteAlias | None = None,
        notify: controller.Notify | None = None,
    ) -> None:
        self.settings = settings
        self.model_name = settings.registry.model_name
        self._load = load
        self._store = store
        self._writer = writer
        self.metrics = metrics
        self._reload_champion = reload_champion
        self._champion = champion
        self.promote_alias = promote_alias
        self.notify = notify
        self.route = Route()
        self.policy: Policy | None = None
        self.faults = Faults()
        self.limits = Thresholds()
        self.last_error: str | None = None
        self._loaded: dict[str, LoadedModel] = {}
        self._jobs: deque[ShadowJob] = deque()
        self._queued = 0
        self._wake = threading.Condition()
        self._pending: list[ShadowJob] = []
        self._flush_scheduled = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_evaluation = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load_failures = 0
        self._inline: LoadedModel | None = None  # the challenger fast enough to score on the loop
        self._slice_records = 1  # how many of its records the loop scores between two turns
        self._loop_jobs: deque[ShadowJob] = deque()  # waiting for the loop (all ours: no lock)
        self._loop_queued = 0  # their records
        self._loop_scoring = False  # a `_score_inline` call is scheduled
        self._loop_rows: list[tuple[Any, ...]] = []  # scored on the loop, not yet with the writer
        self._loop_rows_model: LoadedModel | None = None  # whose they are
        self._slow_slices = 0  # slices in a row that took it over INLINE_DEMOTE_AFTER on the loop

    # -- hot path ------------------------------------------------------------------------------

    def fault(self, kind: str, reason: str) -> None:
        """Count a challenger fault; at the limit, stop using it here and ask for a rollback."""
        self.faults.count(kind)
        total = self.faults.errors + self.faults.timeouts
        if self.faults.reason is None and (kind == "constant" or total >= self.limits.fault_limit):
            self.faults.reason = reason
            logger.error("challenger fault limit reached: %s", reason)
            self.route = Route(policy=self.route.policy)  # every request to the champion now

    def check_score(self, probability: float, witness: Any) -> None:
        """A challenger that gives one score to different inputs is degenerate (rolled back).

        `witness` stands for the input (the champion's score of it, or its values): the run of
        equal scores grows only when it changes, so one customer asking twice proves nothing.
        """
        faults = self.faults
        if probability != faults.last_score:
            faults.last_score = probability
            faults.same_score_run = 0
            if callable(witness):
                witness = None  # computed only when a score repeats
            faults.last_witness = witness
            return
        if callable(witness):
            witness = witness()
        if witness != faults.last_witness:
            faults.same_score_run += 1
            run = faults.same_score_run + 1
            if run >= self.limits.constant_after and faults.reason is None:
                self.fault(
                    "constant",
                    f"challenger returned the constant score {probability} for {run} "
                    "different requests in a row",
                )
        faults.last_witness = witness

    def shadow(self, job: ShadowJob) -> None:
        """Queue records for the challenger; scored SHADOW_BATCH_SECONDS later, on the loop or on
        the shadow thread (the answer is with the server by then)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a large batch scored in a worker thread
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.shadow, job)
            return
        self._pending.append(job)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_later(SHADOW_BATCH_SECONDS, self._hand_over)

    def _hand_over(self) -> None:
        self._flush_scheduled = False
        jobs, self._pending = self._pending, []
        if self._stopping:  # as on the thread: what waits at shutdown is not scored
            return
        inline = self._inline
        on_loop: list[ShadowJob] = []
        on_thread: list[ShadowJob] = []
        for job in jobs:
            fits = inline is not None and job.model is inline and len(job.records) <= INLINE_CHUNK
            (on_loop if fits else on_thread).append(job)
        self._loop_queued = self._enqueue(self._loop_jobs, self._loop_queued, on_loop)
        if self._loop_jobs and not self._loop_scoring:
            self._loop_scoring = True
            asyncio.get_running_loop().call_soon(self._score_inline)
        if on_thread:
            self._to_thread(on_thread)

    def _score_inline(self) -> None:
        """Score one slice of the loop's queue, then let the loop take a turn before the next."""
        self._loop_scoring = False
        try:
            self._score_slice()
        except Exception:  # never silently: the queue would stall with its records uncounted
            logger.exception("shadow scoring on the event loop failed; its queue is dropped")
            self.faults.count("dropped", self._loop_queued)  # the slice in flight included
            self._take_loop_jobs()
            self._flush_loop_rows()
            return
        if self._loop_jobs:
            self._loop_scoring = True
            asyncio.get_running_loop().call_soon(self._score_inline)

    def _score_slice(self) -> None:
        queue = self._loop_jobs
        if self._stopping:  # what is scored is kept; the rest is not scored (as on the thread)
            self._take_loop_jobs()
            self._flush_loop_rows()
            return
        route = self.route
        now = time.perf_counter()
        late = 0
        while queue and now - queue[0].submitted > route.timeout:
            late += len(queue.popleft().records)
        if late:  # the loop is behind: not the challenger's fault
            self._loop_queued -= late
            self.faults.count("dropped", late)
        if not queue:
            self._flush_loop_rows()
            return
        model = queue[0].model
        chunk = [queue.popleft()]
        count = len(chunk[0].records)
        limit = self._slice_records
        while queue and queue[0].model is model and count + len(queue[0].records) <= limit:
            chunk.append(queue.popleft())
            count += len(chunk[-1].records)
        if self._loop_rows_model is not model:
            self._flush_loop_rows()
            self._loop_rows_model = model
        took = self._score_shadow(route, chunk, self._loop_rows)
        self._loop_queued -= count  # only now: should scoring raise, the chunk counts as dropped
        if took is not None and self._inline is model:
            self._slow_slices = self._slow_slices + 1 if took > INLINE_DEMOTE_AFTER else 0
            if self._slow_slices >= INLINE_STRIKES:
                logger.warning(
                    "challenger took over %.0f ms on the event loop %d times in a row (last: "
                    "%.1f ms for %d records): scored on a thread now",
                    1000 * INLINE_DEMOTE_AFTER,
                    INLINE_STRIKES,
                    1000 * took,
                    count,
                )
                self._inline = None
        if self._inline is None and queue:  # demoted: the rest waits for the thread
            self._to_thread(self._take_loop_jobs())
        if not queue or len(self._loop_rows) >= LOOP_ROWS_PER_LINE:
            self._flush_loop_rows()

    def _take_loop_jobs(self) -> list[ShadowJob]:
        """Empty the loop's queue; what it held."""
        jobs = list(self._loop_jobs)
        self._loop_jobs.clear()
        self._loop_queued = 0
        return jobs

    def _enqueue(self, queue: deque[ShadowJob], queued: int, jobs: list[ShadowJob]) -> int:
        """Append `jobs` to `queue` (holding `queued` records) up to MAX_SHADOW_QUEUE records;
        the rest are dropped and counted. The records `queue` holds then."""
        for job in jobs:
            if queued + len(job.records) > MAX_SHADOW_QUEUE:
                self.faults.count("dropped", len(job.records))
                continue
            queue.append(job)
            queued += len(job.records)
        return queued

    def _flush_loop_rows(self) -> None:
        rows, self._loop_rows = self._loop_rows, []
        if rows and self._loop_rows_model is not None:
            self._store_rows(self._loop_rows_model, rows)

    def _to_thread(self, jobs: list[ShadowJob]) -> None:
        with self._wake:
            self._queued = self._enqueue(self._jobs, self._queued, jobs)
            self._wake.notify()

    # -- the shadow thread ---------------------------------------------------------------------

    def _shadow_loop(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                jobs = list(self._jobs)
                self._jobs.clear()
                self._queued = 0
            route = self.route
            rows: list[tuple[Any, ...]] = []
            self._score_shadow(route, jobs, rows)  # only route.challenger's: the rows are its own
            if route.challenger is not None:
                self._store_rows(route.challenger, rows)

    def _score_shadow(
        self, route: Route, jobs: list[ShadowJob], rows: list[tuple[Any, ...]]
    ) -> float | None:
        """Score those of `jobs` that are for `route`'s challenger, count them and add their rows
        for the writer to `rows`; the seconds the scoring took."""
        if route.mode != "shadow" or route.challenger is None:
            return None
        challenger = route.challenger
        jobs = [job for job in jobs if job.model is challenger]
        if not jobs:
            return None
        records = [record for job in jobs for record in job.records]
        started = time.perf_counter()
        try:  # probabilities only: nobody reads a shadow's reasons
            scores = challenger.scorer.score_records(records, reasons=False)
            probabilities = scores.probability.tolist()
            decisions = scores.will_churn.tolist()
            levels = scores.risk_level.tolist()
            if len(probabilities) != len(records):
                raise ValueError(f"{len(probabilities)} scores for {len(records)} records")
        except Exception as exc:
            self.fault("errors", f"challenger raised {type(exc).__name__}: {exc}")
            self.metrics.observe_variant("shadow", (), 0.0, errors=len(records))
            return time.perf_counter() - started
        finished = time.perf_counter()
        each_us = int((finished - started) * 1e6 / max(1, len(records)))
        scored: list[tuple[Any, ...]] = []
        late = 0
        i = 0
        for job in jobs:
            if finished - job.submitted > route.timeout:
                late += len(job.records)
                i += len(job.records)
                continue
            created_at = job.created_at
            for prediction_id in job.prediction_ids:
                scored.append(
                    (prediction_id, created_at, probabilities[i], decisions[i], levels[i], each_us)
                )
                i += 1
        took = finished - started
        if took > route.timeout:  # the challenger itself is too slow: a fault
            self.fault(
                "timeouts",
                f"challenger took {1000 * took:.0f} ms, over the {1000 * route.timeout:.0f} ms bound",
            )
        elif late:  # waited too long for a core (the machine is busy): discarded, not its fault
            self.faults.count("dropped", late)
        champion = jobs[-1].champion_probability
        for probability in probabilities[-1:]:
            self.check_score(probability, champion)
        if scored:
            self.metrics.observe_variant("shadow", [r[4] for r in scored], took)
            rows += scored
        return took

    def _store_rows(self, challenger: LoadedModel, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        writer = self._writer()
        if writer is not None:
            writer.enqueue_shadow(challenger.name, challenger.version, rows)

    # -- policy --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._shadow_loop, name="shadow", daemon=True)
        self._thread.start()
        try:
            await self.refresh()
        except Exception as exc:  # no store yet: serve the champion, the poller retries
            self.last_error = str(exc)
            logger.error("cannot read the deployment policy at start-up: %s", exc)
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)

    async def _poll(self) -> None:
        interval = self.settings.deployment.poll_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the poller must never die
                self.last_error = str(exc)
                logger.exception("deployment poller error")

    async def refresh(self) -> None:
        """Read the policy; roll back on local faults; flush counters; evaluate when due."""
        store = self._store()
        if store is None:
            return
        policy = await asyncio.to_thread(read_policy, store, self.model_name)
        if policy is not None and policy.active:
            pending = self.faults.take_pending()
            counts = {
                "challenger_errors": pending.get("errors", 0) + pending.get("constant", 0),
                "challenger_timeouts": pending.get("timeouts", 0),
                "shadow_dropped": pending.get("dropped", 0),
                "champion_errors": pending.get("champion_errors", 0),
            }
            if any(counts.values()):
                await asyncio.to_thread(
                    add_counters,
                    store,
                    model_name=self.model_name,
                    deployment_id=policy.deployment_id,
                    counts=counts,
                )
            reason = self.faults.reason
            if reason is not None and policy.deployment_id == self.faults.deployment_id:
                rolled = await asyncio.to_thread(
                    controller.rollback,
                    store,
                    model_name=self.model_name,
                    reason=reason,
                    actor="auto",
                    evidence={"worker_faults": self._fault_numbers()},
                    notify=self.notify,
                    expected=policy,
                )
                policy = rolled or await asyncio.to_thread(read_policy, store, self.model_name)
        await self.apply(policy)
        await self._maybe_evaluate(store)

    def _fault_numbers(self) -> dict[str, int]:
        f = self.faults
        return {
            "errors": f.errors,
            "timeouts": f.timeouts,
            "dropped": f.dropped,
            "constant": f.constant,
        }

    async def apply(self, policy: Policy | None) -> None:
        """Make `policy` the route in force (loading the challenger first when needed)."""
        current = self.policy
        if (
            policy is not None
            and current is not None
            and policy.revision == current.revision
            and policy.deployment_id == current.deployment_id
        ):
            return
        if policy is None or not policy.active:
            # The last challenger stays loaded (one model): switching a deployment off and on
            # again, or back from a rollback, needs no second load.
            self.policy = policy
            self.route = Route(policy=policy)
            self._new_deployment(policy)
            champion = self._champion()
            if (
                policy is not None
                and policy.champion_version
                and champion is not None
                and champion.version != policy.champion_version
            ):
                await self._reload_champion()
            self.metrics.set_deployment(policy)
            return
        assert policy.challenger_version is not None
        if self.faults.deployment_id != policy.deployment_id:
            self._new_deployment(policy)
        challenger = self._loaded.get(policy.challenger_version)
        if challenger is None:
            uri = f"models:/{self.model_name}/{policy.challenger_version}"
            try:
                challenger = await asyncio.to_thread(self._load, uri)
            except Exception as exc:  # retried at the next poll; rolled back after a few
                self.last_error = f"cannot load challenger {uri}: {exc}"
                logger.error("%s", self.last_error)
                self._load_failures += 1
                if self._load_failures >= LOAD_ATTEMPTS:
                    self.fault("errors", self.last_error)
                    self.faults.reason = self.last_error
                self.policy = policy if self._load_failures >= LOAD_ATTEMPTS else current
                self.route = Route(policy=policy)
                return
            self._load_failures = 0
            self._loaded = {policy.challenger_version: challenger}
            each = await asyncio.to_thread(inline_seconds_per_record, challenger)
            self._inline = None if each is None else challenger
            self._slice_records = slice_records(each)
            self._slow_slices = 0
        if self.faults.reason is not None:  # faulted here: champion only until the policy moves on
            self.policy = policy
            self.route = Route(policy=policy)
            return
        self.policy = policy
        self.route = Route(
            mode=policy.mode,
            challenger=challenger,
            salt=policy.salt,
            cut=cutoff(policy.weight) if policy.mode == "canary" else 0,
            live_challenger=policy.live == "challenger",
            sample_rate=policy.sample_rate,
            timeout=policy.timeout_ms / 1000.0,
            policy=policy,
        )
        self.metrics.set_deployment(policy)

    def _new_deployment(self, policy: Policy | None) -> None:
        self.faults = Faults(deployment_id=None if policy is None else policy.deployment_id)
        self._load_failures = 0
        self.limits = Thresholds.from_mapping(policy.thresholds) if policy else Thresholds()

    async def _maybe_evaluate(self, store: Any) -> None:
        interval = self.settings.deployment.evaluate_interval_seconds
        policy = self.policy
        if interval <= 0 or policy is None or not policy.active or not policy.auto:
            return
        if time.monotonic() - self._last_evaluation < interval:
            return
        self._last_evaluation = time.monotonic()
        claimed = await asyncio.to_thread(
            claim_evaluation,
            store,
            model_name=self.model_name,
            deployment_id=policy.deployment_id,
            every_seconds=interval * 0.9,
        )
        if not claimed:  # another worker (or replica) judges this interval
            return
        outcome = await asyncio.to_thread(
            controller.evaluate,
            store,
            model_name=self.model_name,
            business=self.settings.business,
            promote_alias=self.promote_alias,
            notify=self.notify,
            bootstrap_samples=self.settings.deployment.bootstrap_samples,
        )
        if outcome.action not in ("hold", "none", "lost"):
            await self.apply(outcome.policy)

    def describe(self) -> dict[str, Any]:
        """This worker's view, for `GET /deployment`."""
        route = self.route
        return {
            "policy": None if self.policy is None else self.policy.to_json_dict(),
            "worker": {
                "pid": os.getpid(),
                "mode": route.mode,
                "challenger_version": None
                if route.challenger is None
                else route.challenger.version,
                # where this worker scores its shadow: "event-loop" (fast challenger) or "thread"
                "shadow_scoring": None
                if route.mode != "shadow" or route.challenger is None
                else ("event-loop" if self._inline is route.challenger else "thread"),
                "faults": self._fault_numbers(),
                "fault_reason": self.faults.reason,
                "last_error": self.last_error,
                "checked_at": datetime.now(UTC).isoformat(),
            },
        }


def inline_seconds_per_record(model: LoadedModel) -> float | None:
    """How long `model` takes a record when scoring INLINE_CHUNK of them, or None when that is
    too slow to do on the event loop (over INLINE_PROBE_LIMIT for the chunk).

    Best of PROBE_RUNS on copies of its request example, so a busy machine does not make a fast
    model look slow; one that raises, or sleeps, stays on the thread.
    """
    records = [dict(model.contract.example) for _ in range(INLINE_CHUNK)]
    best = float("inf")
    try:
        for _ in range(PROBE_RUNS):
            started = time.perf_counter()
            model.scorer.score_records(records, reasons=False)
            took = time.perf_counter() - started
            if took > 0.05:  # slow even for a first call: no point in the other runs
                return None
            best = min(best, took)
    except Exception:  # the thread path counts its faults
        return None
    return best / INLINE_CHUNK if best <= INLINE_PROBE_LIMIT else None


def slice_records(seconds_per_record: float | None) -> int:
    """Records in one slice of loop scoring: about INLINE_SLICE_SECONDS' worth, 1 to INLINE_CHUNK."""
    if not seconds_per_record:
        return 1
    return max(1, min(INLINE_CHUNK, int(INLINE_SLICE_SECONDS / seconds_per_record)))
