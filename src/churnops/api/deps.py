"""The app's state (model manager, store writer, limiter, metrics) and route dependency aliases.

`ServiceState` is built in `create_app()` without any I/O; `start()` and `stop()` run in the
lifespan. Routes on the hot path read `request.app.state.service` directly; the others use the
`Annotated` aliases below so they stay three lines long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import Depends, Request

from churnops.api.errors import ApiError
from churnops.api.metrics import PUBLISH_EVERY_SECONDS, ApiMetrics, WorkerShare
from churnops.api.preflight import route_limits
from churnops.api.ratelimit import RateLimiter, make_limiter
from churnops.api.reload import LoadedModel, ModelManager, ReloadResult, ScorerLoader, Target
from churnops.api.rollout import Rollout
from churnops.apikeys import KeyRing
from churnops.errors import StoreError
from churnops.modeling.loading import ModelSource
from churnops.settings import Settings
from churnops.store import PredictionStore, WriterState, claim_spool_slot
from churnops.store.writer_process import ProcessWriter, WriterConfig

logger = logging.getLogger(__name__)

READY_PING_TTL_SECONDS = 1.0
MONITORING_TTL_SECONDS = 30.0


def _single_thread_openmp() -> None:
    """One OpenMP thread on the event loop: per-row scoring with thread teams is ~10x slower.

    (xgboost builds a DMatrix for the reasons with every core; OMP_NUM_THREADS is read only when
    the library loads, so the limit is set at run time for this thread. Batch scoring in worker
    threads keeps the default.)
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return
    threadpool_limits(limits=1, user_api="openmp")


class ServiceState:
    """Everything the routes share; one per app."""

    def __init__(
        self,
        settings: Settings,
        *,
        keys: KeyRing,
        scorer_loader: ScorerLoader | None,
        resolve_alias: Any = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.serving = settings.serving
        self.keys = keys
        metrics_dir = settings.serving.metrics_dir
        self.metrics = ApiMetrics(WorkerShare(metrics_dir) if metrics_dir else None)
        self.limits = route_limits(settings)
        self.limiter = limiter or make_limiter(settings.redis_url)
        self._scorer_loader = scorer_loader
        self._resolve_alias = resolve_alias
        self._source: ModelSource | None = None
        self.models = ModelManager(
            model_uri=settings.champion_uri(),
            loader=self._load,
            resolve_alias=self._resolve,
            max_batch_size=settings.serving.max_batch_size,
            default_name=settings.registry.model_name,
            on_swap=self._on_swap,
        )
        self.store: PredictionStore | None = None
        self.writer: ProcessWriter | None = None
        self.rollout = Rollout(
            settings,
            load=self._load_version,
            store=lambda: self.store,
            writer=lambda: self.writer,
            metrics=self.metrics,
            reload_champion=self.reload,
            champion=lambda: self.models.current,
            promote_alias=self._promote_alias,
            notify=self._notify if settings.monitoring.webhook_url else None,
        )
        self.store_error: str | None = None
        self._spool_lock: IO[str] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._ping: tuple[float, bool] = (0.0, True)
        self._monitoring_checked = 0.0
        self.started_at = time.time()

    # -- model -----------------------------------------------------------------------------

    def _load(self, uri: str) -> Any:
        if self._scorer_loader is None:
            from churnops.modeling.loading import load_scorer

            source = self._model_source()
            self._scorer_loader = lambda model_uri: load_scorer(model_uri, source=source)
        return self._scorer_loader(uri)

    def _model_source(self) -> ModelSource:
        """The registry and the local model cache; MLflow is set up only if a load needs it."""
        if self._source is None:
            from churnops.modeling.tracking import model_source

            self._source = model_source(self.settings, must_exist=False)
        return self._source

    def _resolve(self, name: str, alias: str) -> str | None:
        if self._resolve_alias is None:
            from churnops.modeling.registry_lookup import lookup_version

            source = self._model_source()

            def resolve(model_name: str, model_alias: str) -> str | None:
                # The registry's own tables first (no MLflow import); MLflow when it cannot say.
                record = lookup_version(source.registry_uri, f"models:/{model_name}@{model_alias}")
                if record is not None:
                    return record.version
                from churnops.modeling.registry import alias_version

                assert source.client is not None
                found = alias_version(source.client(), model_name, model_alias)
                return None if found is None else str(found.version)

            self._resolve_alias = resolve
        result: str | None = self._resolve_alias(name, alias)
        return result

    def _load_version(self, uri: str) -> LoadedModel:
        """Load and warm a challenger beside the champion (blocking; a worker thread)."""
        name, _, version = uri.removeprefix("models:/").partition("/")
        return self.models.load(Target(uri, name, version, None))

    def _promote_alias(self, name: str, version: str, why: str) -> None:
        from churnops.modeling.registry import promote
        from churnops.modeling.tracking import configure_tracking

        promote(configure_tracking(self.settings), name=name, version=version, why=why)

    def _notify(self, payload: dict[str, Any]) -> None:
        from churnops.monitoring.alerts import post_webhook

        url = self.settings.monitoring.webhook_url
        if url:
            post_webhook(url, payload, timeout=5.0)

    def _on_swap(self, model: LoadedModel) -> None:
        self.metrics.set_model(
            name=model.name,
            version=model.version,
            uri=model.uri,
            candidate=model.scorer.bundle.candidate,
            loaded_at=model.loaded_at.timestamp(),
        )

    def require_model(self) -> LoadedModel:
        model = self.models.current
        if model is None:
            reason = self.models.last_error or "still loading"
            raise ApiError(
                503, "model_not_loaded", f"no model loaded: {reason}", headers={"Retry-After": "5"}
            )
        return model

    async def reload(self, *, force: bool = False) -> ReloadResult:
        result = await self.models.refresh(force=force)
        self.metrics.count_reload(result.status)
        return result

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store (migrating it), start the writer, load the model, start the poller."""
        _single_thread_openmp()
        spool_path = await asyncio.to_thread(self._open_store)
        self.writer = await ProcessWriter(
            WriterConfig(
                database_url=self.settings.resolved_database_url(),
                spool_path=str(spool_path),
                spool_max_bytes=self.serving.spool_max_bytes,
                batch_size=self.serving.store_batch_size,
                flush_interval=self.serving.store_flush_interval_seconds,
                reconnect_interval=max(
                    0.5, min(5.0, self.serving.store_flush_interval_seconds * 4)
                ),
                schema_ready=self.store is not None and self.store.schema_ready,
            ),
            lock_fd=None if self._spool_lock is None else self._spool_lock.fileno(),
            refuse_when_full=self.settings.resolved_on_spool_full() == "refuse",
        ).start()
        self.metrics.watch_store(self.writer_state)
        self.metrics.watch_monitoring()
        result = await self.reload()
        if result.status == "failed":
            logger.error("starting without a model: %s", result.error)
        if self.serving.reload_interval_seconds > 0:
            self._poller = asyncio.create_task(
                self.models.poll(self.serving.reload_interval_seconds, self._count_reload)
            )
        if self.metrics.share is not None:
            self._publisher = asyncio.create_task(self._publish_metrics())
        await self.rollout.start()

    async def _publish_metrics(self) -> None:
        """Let sibling workers include this one's figures in their /metrics."""
        while True:
            await asyncio.to_thread(self.metrics.publish)
            await asyncio.sleep(PUBLISH_EVERY_SECONDS)

    def _count_reload(self, result: ReloadResult) -> None:
        self.metrics.count_reload(result.status)

    def _open_store(self) -> Path:
        """Open (and migrate) the store for reads and feedback; claim this worker's spool file."""
        url = self.settings.resolved_database_url()
        self.store = PredictionStore(url, connect_timeout=2.0)
        try:
            self.store.create()
        except StoreError as exc:  # keep serving; the writer spools and retries
            self.store_error = str(exc)
            logger.error("prediction store unavailable at start-up, spooling: %s", exc)
        spool_path, self._spool_lock = claim_spool_slot(self.settings.resolved_spool_path())
        return spool_path

    async def stop(self) -> None:
        """Stop polling, flush every queued prediction, close connections."""
        await self.rollout.stop()
        for task in (self._poller, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.writer is not None:
            await self.writer.aclose()
        if self.store is not None:
            self.store.close()
        await self.limiter.close()
        if self._spool_lock is not None:
            self._spool_lock.close()
        self.metrics.publish()  # the final counts stay in the totals of the other workers

    # -- store -------------------------------------------------------------------------------

    def writer_state(self) -> WriterState | None:
        return self.writer.state if self.writer is not None else None

    async def store_reachable(self) -> bool:
        """Ping the database, at most once a second."""
        checked, ok = self._ping
        if time.monotonic() - checked < READY_PING_TTL_SECONDS or self.store is None:
            return ok
        ok = await asyncio.to_thread(self.store.ping)
        self._ping = (time.monotonic(), ok)
        return ok

    def refresh_monitoring(self) -> None:
        """Feed the latest stored monitoring report to the drift gauges (at most every 30 s)."""
        collector = self.metrics.monitoring
        if collector is None or self.store is None:
            return
        now = time.monotonic()
        if now - self._monitoring_checked < MONITORING_TTL_SECONDS:
            return
        self._monitoring_checked = now
        try:
            from churnops.monitoring.monitor import MonitoringReport

            for result in self.store.read_monitoring_results(limit=5):
                try:
                    collector.set_report(MonitoringReport.model_validate(result.summary))
                    return
                except ValueError:  # a result that is not a full report (other kinds)
                    continue
        except Exception as exc:  # monitoring gauges are best effort
            logger.debug("cannot read monitoring results: %s", exc)


def get_service(request: Request) -> ServiceState:
    service: ServiceState = request.app.state.service
    return service


def get_model(request: Request) -> LoadedModel:
    return get_service(request).require_model()


ServiceDep = Annotated[ServiceState, Depends(get_service)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
