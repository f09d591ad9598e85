"""Content hashes of a table: one row digest (whole frame or streamed chunk by chunk, same result)
and, for files, the digest of their bytes (what `sha256sum FILE` prints)."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)
HASH_BLOCK = 8 << 20


class RowFingerprint:
    """sha256 over column names and per-row hashes, fed chunk by chunk: the same table gives the
    same digest whatever the chunking, file format or row count per chunk."""

    kind = "sha256-rows"

    def __init__(self, columns: list[str]) -> None:
        self._digest = hashlib.sha256()
        self._digest.update("\x1f".join(map(str, columns)).encode())

    def update(self, frame: pd.DataFrame) -> None:
        self._digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def value(self) -> str:
        """`sha256-rows:<hex>`, as recorded with a batch run."""
        return f"{self.kind}:{self.hexdigest()}"


def fingerprint(frame: pd.DataFrame) -> str:
    """The row digest of a whole frame (a training table's fingerprint)."""
    digest = RowFingerprint(list(frame.columns))
    digest.update(frame)
    return digest.hexdigest()


class FileFingerprint:
    """sha256 of a file's bytes, computed on its own thread (hashlib releases the GIL).

    Far cheaper than hashing parsed rows; recorded as `sha256-file:<hex>`.
    """

    kind = "sha256-file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="churnops-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self.path.open("rb") as handle:
                while block := handle.read(HASH_BLOCK):
                    self._digest.update(block)
        except BaseException as exc:
            self._error = exc

    def update(self, frame: pd.DataFrame) -> None:
        return None  # the bytes are hashed on the thread, not the parsed rows

    def value(self) -> str | None:
        self._thread.join()
        if self._error is not None:
            logger.warning("cannot fingerprint %s: %s", self.path, self._error)
            return None
        return f"{self.kind}:{self._digest.hexdigest()}"


def input_fingerprint(source: str, columns: list[str]) -> RowFingerprint | FileFingerprint:
    """A file's byte digest for file inputs, a row digest for anything else (SQL)."""
    path = Path(source)
    if "#" not in source and path.is_file():
        return FileFingerprint(path)
    return RowFingerprint(columns)
