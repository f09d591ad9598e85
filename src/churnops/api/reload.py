"""The served model and its zero-downtime replacement.

`ModelManager.current` is one immutable `LoadedModel` (scorer + generated contract + identity).
A request reads it once and uses that object to the end, so swapping the reference is atomic and
in-flight requests finish on the model they started with. A new version is loaded and warmed up
in a worker thread beside the old one, and only then swapped in; a failed load keeps the old model.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from churnops.errors import ModelNotFoundError
from churnops.logformat import set_process_fields

if TYPE_CHECKING:  # pandas and numba: imported by the first load, not by building the app
    from churnops.api.contract import Contract
    from churnops.modeling.scorer import Scorer

logger = logging.getLogger(__name__)

ScorerLoader = Callable[[str], tuple["Scorer", Any]]
VersionResolver = Callable[[str, str], str | None]  # (model name, alias) -> version or None

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[^/@]+)$")


@dataclass(frozen=True)
class LoadedModel:
    """One loaded model version with its request contract; never mutated after creation."""

    scorer: Scorer
    contract: Contract
    name: str
    version: str
    uri: str
    alias: str | None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class ReloadResult:
    status: Literal["swapped", "unchanged", "failed"]
    version: str | None
    previous_version: str | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "previous_version": self.previous_version,
            "error": self.error,
        }


@dataclass(frozen=True)
class Target:
    """What to load: the concrete URI, the model name, its version (None: unknown) and alias."""

    uri: str
    name: str
    version: str | None
    alias: str | None


class ModelManager:
    """Holds the current model; `refresh()` polls the alias and swaps in a new version."""

    def __init__(
        self,
        *,
        model_uri: str,
        loader: ScorerLoader,
        resolve_alias: VersionResolver | None,
        max_batch_size: int,
        default_name: str,
        on_swap: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.model_uri = model_uri
        self.loader = loader
        self.resolve_alias = resolve_alias
        self.max_batch_size = max_batch_size
        self.default_name = default_name
        self.on_swap = on_swap
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self.last_check: datetime | None = None
        self._lock = asyncio.Lock()

    def target(self) -> Target:
        """Resolve the configured URI to a concrete version (an alias is looked up)."""
        alias_match = _ALIAS_URI.match(self.model_uri)
        if alias_match:
            name, alias = alias_match["name"], alias_match["alias"]
            if self.resolve_alias is None:
                return Target(self.model_uri, name, None, alias)
            version = self.resolve_alias(name, alias)
            if version is None:
                raise ModelNotFoundError(f"model {name!r} has no version with alias {alias!r}")
            return Target(f"models:/{name}/{version}", name, str(version), alias)
        version_match = _VERSION_URI.match(self.model_uri)
        if version_match:
            return Target(self.model_uri, version_match["name"], version_match["version"], None)
        return Target(self.model_uri, self.default_name, None, None)

    def load(self, target: Target) -> LoadedModel:
        """Load, build the contract and warm up (blocking; runs in a worker thread)."""
        from churnops.api.contract import build_contract

        scorer, _ = self.loader(target.uri)
        scorer.set_threads(1)
        contract = build_contract(
            scorer.schema,
            max_batch_size=self.max_batch_size,
            profile=scorer.bundle.profile,
        )
        scorer.warm_up(contract.example)  # first calls pay one-off costs here, not a user's request
        return LoadedModel(
            scorer=scorer,
            contract=contract,
            name=target.name,
            version=target.version or "unknown",
            uri=target.uri,
            alias=target.alias,
        )

    async def refresh(self, *, force: bool = False) -> ReloadResult:
        """Load the version the alias points to if it differs from the served one."""
        async with self._lock:
            previous = self.current.version if self.current else None
            self.last_check = datetime.now(UTC)
            try:
                target = await asyncio.to_thread(self.target)
                unchanged = (
                    self.current is not None
                    and target.version is not None
                    and target.version == self.current.version
                    and target.uri == self.current.uri
                )
                if unchanged and not force:
                    return ReloadResult("unchanged", previous, previous)
                started = time.perf_counter()
                loaded = await asyncio.to_thread(self.load, target)
            except Exception as exc:  # keep serving the old model, report why
                self.last_error = str(exc)
                logger.error("model reload from %s failed: %s", self.model_uri, exc)
                return ReloadResult("failed", previous, previous, str(exc))
            self.current = loaded  # the atomic swap
            self.last_error = None
            set_process_fields(model_version=loaded.version)  # on this worker's log lines from now
            logger.info(
                "serving %s version %s (was %s), loaded in %.1fs",
                loaded.name,
                loaded.version,
                previous,
                time.perf_counter() - started,
            )
            if self.on_swap is not None:
                self.on_swap(loaded)
            return ReloadResult("swapped", loaded.version, previous)

    async def poll(self, interval: float, on_result: Callable[[ReloadResult], None]) -> None:
        """Check the alias every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                on_result(await self.refresh())
            except asyncio.CancelledError:
                raise
            except Exception:  # the poller must never die
                logger.exception("model poller error")
