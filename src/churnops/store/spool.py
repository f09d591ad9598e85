"""A bounded, append-only JSONL file holding predictions while the database is unreachable."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from churnops.errors import StoreError
from churnops.store.records import FeedbackRecord, PredictionRecord, to_jsonable

SpoolRecord = PredictionRecord | FeedbackRecord
_LINE_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

logger = logging.getLogger(__name__)


MAX_SPOOL_SLOTS = 64


def claim_spool_slot(base: str | Path) -> tuple[Path, IO[str] | None]:
    """A spool file no other live process uses: `spool.jsonl`, else `spool.1.jsonl`, ...

    Each worker holds an exclusive lock on its slot for its lifetime; a restarted worker takes a
    free slot again and so replays whatever its predecessor left there.
    """
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SPOOL_SLOTS):
        path = base if slot == 0 else base.with_name(f"{base.stem}.{slot}{base.suffix}")
        handle = Path(str(path) + ".lock").open("w")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return path, handle
    return base.with_name(f"{base.stem}.{os.getpid()}{base.suffix}"), None


class SpoolFullError(StoreError):
    """The spool cannot take more predictions: the caller refuses them (HTTP 503)."""


def append_raw(path: str | Path, lines: Sequence[bytes], *, max_bytes: int) -> int:
    """Append encoded record lines to a spool file that no Spool object holds open right now;
    returns how many fit under `max_bytes`. One write and one fsync, no parsing, no reading."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as fh:
        count, _ = _fitting(lines, os.fstat(fh.fileno()).st_size, max_bytes)
        if count:
            _write_synced(fh, lines[:count])
    return count


def _fitting(lines: Sequence[bytes], size: int, max_bytes: int) -> tuple[int, int]:
    """How many of `lines`, in order, fit on top of `size` bytes under `max_bytes`; the new size."""
    count = 0
    for line in lines:
        if size + len(line) > max_bytes:
            break
        size += len(line)
        count += 1
    return count, size


def _write_synced(fh: BinaryIO, lines: Sequence[bytes]) -> None:
    fh.write(b"".join(lines))
    fh.flush()
    os.fsync(fh.fileno())


class Spool:
    """Local overflow for the writer: one JSON prediction (or label) record per line.

    Appends are fsynced, so an acknowledged spool write survives a crash. The file never grows
    beyond `max_bytes`: `append` accepts what fits and reports the rest, which the caller must
    count. Replays remove what was written from the file (atomic rewrite), so a replay interrupted
    by a new outage or a crash resumes where it stopped; at worst the last batch is written twice,
    which the store ignores (prediction ids are unique). Thread-safe.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int,
        record_type: type[SpoolRecord] = PredictionRecord,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.record_type = record_type
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._records = 0
        self._bytes = 0
        self._loaded = False
        self.corrupt_lines = 0

    def _load(self) -> None:
        """Count what a previous process left behind (once, lazily: no I/O in __init__)."""
        if self._loaded:
            return
        self._loaded = True
        try:
            with self.path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        self._records += 1
                    self._bytes += len(line)
        except FileNotFoundError:
            return
        if self._records:
            logger.warning(
                "prediction spool %s holds %d record(s) from an earlier run; they will be "
                "replayed when the database is reachable",
                self.path,
                self._records,
            )

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            with self._lock:
                self._load()

    @property
    def records(self) -> int:
        """Records waiting in the file; never blocks behind a replay in progress."""
        self._ensure_loaded()
        return self._records

    @property
    def size_bytes(self) -> int:
        self._ensure_loaded()
        return self._bytes

    @property
    def full(self) -> bool:
        """True when not even a small record would fit any more."""
        return self.size_bytes >= self.max_bytes - 256

    def append(self, records: Sequence[SpoolRecord]) -> int:
        """Append as many records as fit under `max_bytes`; returns how many were written.

        Raises OSError when the file cannot be written at all (nothing was accepted then).
        """
        # orjson, as the API encodes the lines it hands over: a spooled record takes about the
        # room the API reserved for it (json.dumps would escape non-ASCII text to 2-3x its size).
        lines = [
            orjson.dumps(record.to_json_dict(), default=to_jsonable, option=_LINE_OPTIONS) + b"\n"
            for record in records
        ]
        return self.append_lines(lines)

    def append_lines(self, lines: Sequence[bytes]) -> int:
        """Append already-encoded record lines (each ending in a newline) that fit; how many.

        For a caller that holds records in the spool's own line format and need not parse them
        to set them aside; unreadable lines are counted and skipped at replay, like torn ones.
        """
        if not lines:
            return 0
        with self._lock:
            self._load()
            count, size = _fitting(lines, self._bytes, self.max_bytes)
            if not count:
                return 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as fh:
                _write_synced(fh, lines[:count])
            self._records += count
            self._bytes = size
            return count

    def _parse(self, line: bytes) -> SpoolRecord | None:
        try:
            return self.record_type.from_json_dict(json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            self.corrupt_lines += 1
            logger.error("skipping unreadable line in prediction spool %s: %s", self.path, exc)
            return None

    def _keep_only(self, remaining: list[bytes]) -> None:
        """Atomically replace the spool with `remaining` lines."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(b"".join(remaining))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        self._records = sum(1 for line in remaining if line.strip())
        self._bytes = sum(len(line) for line in remaining)

    def replay(self, write: Callable[[list[Any]], object], *, batch_size: int) -> int:
        """Feed the spooled records to `write` in batches, oldest first; returns how many.

        If `write` raises, the unwritten records stay in the spool and the exception propagates.
        Unparseable lines (a crash mid-append) are logged, counted in `corrupt_lines` and dropped.
        """
        with self._lock:
            self._load()
            if not self.path.exists():
                self._records = self._bytes = 0
                return 0
            lines = self.path.read_bytes().splitlines(keepends=True)
            if lines and not lines[-1].endswith(b"\n"):
                lines[-1] += b"\n"  # torn last line: keep it parseable-or-skipped, not merged
            done = 0
            for start in range(0, len(lines), batch_size):
                chunk = lines[start : start + batch_size]
                batch = [r for r in (self._parse(line) for line in chunk if line.strip()) if r]
                try:
                    if batch:
                        write(batch)
                except BaseException:
                    self._keep_only(lines[start:])
                    raise
                done += len(batch)
                # progress visible to /metrics while the replay runs; _keep_only makes it exact
                self._records = max(0, self._records - sum(1 for line in chunk if line.strip()))
                self._bytes = max(0, self._bytes - sum(len(line) for line in chunk))
            self._keep_only([])
            self.path.unlink(missing_ok=True)
            return done
