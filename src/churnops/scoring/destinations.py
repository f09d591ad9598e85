"""Where a batch run writes (output, summary, rejects, temporary names) and whether it may.

No pandas here: `churnops predict` checks its destinations before any heavy import, so a run that
would destroy its input or cannot write its output fails in a moment, with nothing written.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from churnops.data.sources import is_sql_url, split_sql_source
from churnops.errors import ConfigError

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
OUTPUT_FORMATS |= {".ndjson": "jsonl"}


def output_kind(destination: str) -> str:
    """'csv', 'parquet', 'jsonl' or 'sql' for an output name; ConfigError for anything else."""
    if is_sql_url(destination):
        return "sql"
    kind = OUTPUT_FORMATS.get(Path(destination).suffix.lower())
    if kind is None:
        raise ConfigError(
            f"cannot tell the output format of {destination!r}: use .csv, .parquet, .jsonl "
            "or a SQLAlchemy URL#table"
        )
    return kind


def temporary_path(path: Path) -> Path:
    """A hidden sibling of `path` (same directory, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _is_temporary_of(candidate: Path, path: Path) -> bool:
    """Whether `candidate` is (or could be) one of `temporary_path(path)`'s names."""
    pattern = rf"\.{re.escape(path.name)}\.\d+-[0-9a-f]{{8}}\.tmp"
    return candidate.parent == path.parent and re.fullmatch(pattern, candidate.name) is not None


def sidecar_paths(output: str) -> tuple[Path, Path]:
    """Where the summary JSON and the rejects CSV of an output go (beside it; cwd for SQL)."""
    if output_kind(output) == "sql":
        table = output.partition("#")[2].strip() or "predictions"
        base = Path.cwd() / table
    else:
        path = Path(output)
        base = path.with_name(path.name[: -len(path.suffix)] if path.suffix else path.name)
    return base.with_name(base.name + ".summary.json"), base.with_name(base.name + ".rejects.csv")


def default_output(source: str) -> str:
    """`customers.csv` -> `customers.predictions.csv`; XLSX and SQL inputs get Parquet output."""
    if "://" in source or source.startswith(("sqlite:", "postgresql")):
        table = source.partition("#")[2].split()[0] if "#" in source else "input"
        name = table if table.replace("_", "").isalnum() else "query"
        return str(Path.cwd() / f"{name}.predictions.parquet")
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq", ".jsonl", ".ndjson"}:
        suffix = ".parquet"
    return str(path.with_name(f"{path.stem}.predictions{suffix}"))


def _same_file(a: Path, b: Path) -> bool:
    """Same file after symlinks, `..`, `./` and hard links (and case, where the disk ignores it)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _written_files(output: str, rejects: str | None, *, with_rejects: bool) -> dict[str, Path]:
    """Every file a run writes, by what it is."""
    summary, default_rejects = sidecar_paths(output)
    files = {"summary": summary}
    if with_rejects:
        files["rejects file"] = Path(rejects) if rejects else default_rejects
    if output_kind(output) != "sql":
        files = {"output": Path(output)} | files
    return files


def _check_not_input(source: str, written: dict[str, Path], output: str) -> None:
    if is_sql_url(source):
        if is_sql_url(output) and split_sql_source(source) == split_sql_source(output):
            raise ConfigError(f"the output table is the input table {output!r}: choose another")
        return
    real_input = Path(os.path.realpath(source))
    for what, path in written.items():
        if _same_file(Path(source), path) or _is_temporary_of(
            real_input, Path(os.path.realpath(path))
        ):
            raise ConfigError(
                f"the {what} {path} is the input {source}: it would be overwritten; "
                "choose another --output/--rejects"
            )


def _check_writable_folder(path: Path, what: str, *, folder_ok: bool = False) -> None:
    """Create and remove a probe file beside `path`: the one check root cannot pass by mode bits."""
    folder = path.parent
    if path.is_dir() and not folder_ok:
        raise ConfigError(f"{what} {path} is a folder; give a file name")
    if not folder.exists():
        raise ConfigError(f"{what} folder does not exist: {folder}")
    if not folder.is_dir():
        raise ConfigError(f"{what} {path} cannot be written: {folder} is not a folder")
    probe = temporary_path(path)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be written: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        probe.unlink()
    except OSError:  # could create but not delete: writing there is not safe either
        raise ConfigError(f"{what} {path} cannot be written safely in {folder}") from None


def check_destinations(
    source: str,
    output: str,
    *,
    rejects: str | None = None,
    with_rejects: bool = True,
    folder_output: bool = False,
) -> None:
    """Refuse, before anything is read or written, an output that is the input (or one of the
    run's sidecars is), two written files that share a name, or a folder that cannot be written."""
    written = _written_files(output, rejects, with_rejects=with_rejects)
    seen: dict[str, str] = {}
    for what, path in written.items():
        key = os.path.realpath(path)
        if key in seen:
            raise ConfigError(f"the {what} and the {seen[key]} would both be {path}")
        seen[key] = what
    _check_not_input(source, written, output)
    for what, path in written.items():
        _check_writable_folder(path, what, folder_ok=folder_output and what == "output")
