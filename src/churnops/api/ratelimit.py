"""Fixed-window rate limits per API key (or client address), in process or shared through Redis.

Without Redis each worker process counts alone, so with several workers each gets the limit
divided by their number (`per_worker_limits`), and production refuses that unless it is asked
for (`check_worker_limits`). A window is one minute; the answer to an exhausted budget is 429 with `Retry-After` (seconds to
the next window). With Redis, every worker and replica counts in the same key, so the limit holds
for the whole service. Redis being down must not take the API down: the limiter then fails open
and logs it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from churnops.errors import ConfigError
from churnops.settings import Settings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60

_REDIS_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int  # seconds until the window resets


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: int) -> Decision: ...

    async def close(self) -> None: ...


def _window(now: float) -> tuple[int, int]:
    """(window index, whole seconds until it ends, at least 1)."""
    index = int(now // WINDOW_SECONDS)
    return index, max(1, math.ceil((index + 1) * WINDOW_SECONDS - now))


class InProcessLimiter:
    """Counts in this process only (one worker, or per-worker limits)."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    async def hit(self, bucket: str, limit: int) -> Decision:
        window, retry_after = _window(self._clock())
        with self._lock:
            seen_window, count = self._counts.get(bucket, (window, 0))
            if seen_window != window:
                count = 0
                if len(self._counts) > 100_000:  # drop stale buckets now and then
                    self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            count += 1
            self._counts[bucket] = (window, count)
        return Decision(count <= limit, max(0, limit - count), retry_after)

    async def close(self) -> None:
        return None


class RedisLimiter:
    """Counts in Redis (INCR + EXPIRE in one script), shared by every worker and replica."""

    def __init__(self, url: str, *, prefix: str = "churnops:ratelimit") -> None:
        import redis.asyncio as redis

        self.url = url
        self.prefix = prefix
        self._client: Any = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        self._script: Any = self._client.register_script(_REDIS_SCRIPT)
        self._last_warning = 0.0

    async def hit(self, bucket: str, limit: int) -> Decision:
        window, retry_after = _window(time.time())
        key = f"{self.prefix}:{bucket}:{window}"
        try:
            count = int(await self._script(keys=[key], args=[WINDOW_SECONDS + 1]))
        except Exception as exc:  # any Redis failure: fail open, loudly but not per request
            now = time.monotonic()
            if now - self._last_warning > 30:
                self._last_warning = now
                logger.warning(
                    "rate limiter: Redis at %s unavailable, not limiting: %s", self.url, exc
                )
            return Decision(True, limit, retry_after)
        return Decision(count <= limit, max(0, limit - count), retry_after)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self._client.aclose()


def make_limiter(redis_url: str | None, *, prefix: str = "churnops:ratelimit") -> RateLimiter:
    """Redis-backed when a URL is configured, in-process otherwise."""
    if redis_url:
        return RedisLimiter(redis_url, prefix=prefix)
    return InProcessLimiter()


def counts_alone(settings: Settings) -> bool:
    """Several workers and no Redis: each worker's limiter sees only its own requests."""
    return settings.serving.workers > 1 and not settings.redis_url


def check_worker_limits(settings: Settings, limits: Mapping[str, int]) -> str | None:
    """The start-up warning for limits split between workers (None when they are not).

    ConfigError in production unless `serving.rate_limits_without_redis: divide` says that split
    is wanted: there, limits are usually a promise to someone, and Redis keeps it exactly.
    """
    if not limits or not counts_alone(settings):
        return None
    serving = settings.serving
    policy = serving.rate_limits_without_redis or (
        "refuse" if settings.env == "production" else "divide"
    )
    if policy == "refuse":
        raise ConfigError(
            f"refusing to start: {serving.workers} workers without Redis would each count rate "
            "limits alone; set CHURNOPS_REDIS_URL (one shared count), or "
            "serving.rate_limits_without_redis: divide (each worker gets limit / workers)"
        )
    shown = ", ".join(
        f"{route} {limit}->{max(1, limit // serving.workers)}" for route, limit in limits.items()
    )
    return (
        f"rate limits are counted per worker ({serving.workers} workers, no Redis): each worker "
        f"allows limit / {serving.workers} per minute ({shown}); set CHURNOPS_REDIS_URL for "
        "exact limits"
    )


def per_worker_limits(settings: Settings, limits: Mapping[str, int]) -> dict[str, int]:
    """What one worker allows so that all of them together allow at most the limit."""
    if not counts_alone(settings):
        return dict(limits)
    workers = settings.serving.workers
    return {route: max(1, limit // workers) for route, limit in limits.items()}
