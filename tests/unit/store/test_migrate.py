"""The store's head check without Alembic: the same heads and the same database revisions as
Alembic's, and a store already at head is opened without importing Alembic (or Mako)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from churnops.errors import StoreError
from churnops.store import PredictionStore, head_revision, migrate
from churnops.store.migrate import (
    alembic_config,
    database_revisions,
    is_at_head,
    shipped_heads,
)

ROOT = Path(__file__).resolve().parents[3]
# What the migrations need and a store at head must not: Alembic, and Mako and Pygments under it.
MIGRATION_ONLY = ("alembic", "mako", "pygments")


@pytest.fixture
def versions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder standing in for the shipped versions/ (the heads cache cleared around)."""
    folder = tmp_path / "versions"
    folder.mkdir()
    monkeypatch.setattr(migrate, "VERSIONS_DIR", folder)
    shipped_heads.cache_clear()
    yield folder
    shipped_heads.cache_clear()


def _script(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(f'"""A revision."""\n\n{body}\n\n\ndef upgrade() -> None:\n'
                                       "    pass\n")  # fmt: skip


def test_shipped_heads_are_alembics_heads() -> None:
    """The heads read from the scripts' text are the ones Alembic computes from the scripts."""
    script_directory = ScriptDirectory.from_config(alembic_config())
    assert shipped_heads() == frozenset(script_directory.get_heads())
    assert shipped_heads() == {head_revision()}


def test_every_shipped_script_reads_as_alembic_loads_it() -> None:
    """Each script's revision and down_revision, read from its text, are what Alembic loads."""
    script_directory = ScriptDirectory.from_config(alembic_config())
    loaded = {script.revision: script for script in script_directory.walk_revisions()}
    read = {}
    for path in sorted(migrate.VERSIONS_DIR.glob("*.py")):
        values = migrate._script_values(path)
        assert values is not None, path
        read[values["revision"]] = values
    assert read.keys() == loaded.keys()
    for revision, script in loaded.items():
        assert read[revision]["down_revision"] == script.down_revision
        assert read[revision]["branch_labels"] is None and script.branch_labels == set()
        assert read[revision]["depends_on"] is None and script.dependencies is None


def test_branches_and_merges_give_every_head(versions_dir: Path) -> None:
    _script(versions_dir, "a", 'revision = "a"\ndown_revision = None')
    _script(versions_dir, "b", 'revision: str = "b"  # a branch\ndown_revision = "a"')
    _script(versions_dir, "c", "revision = 'c'\ndown_revision: str | None = 'a'")
    assert shipped_heads() == {"b", "c"}
    shipped_heads.cache_clear()
    _script(versions_dir, "d", 'revision = "d"\ndown_revision = ("b", "c")')
    assert shipped_heads() == {"d"}


@pytest.mark.parametrize(
    "body",
    [
        'revision = "r" + "1"\ndown_revision = None',  # computed: only Alembic knows
        'revision = "r"\ndown_revision = (\n    "a",\n)',  # not on one line
        'revision = "r"\nrevision = "s"\ndown_revision = None',  # assigned twice
        "down_revision = None",  # no revision
        'revision = "r"\ndown_revision = None\nbranch_labels = ("x",)',
        'revision = "r"\ndown_revision = None\ndepends_on = "q"',
    ],
)
def test_scripts_not_read_plainly_leave_the_answer_to_alembic(
    versions_dir: Path, tmp_path: Path, body: str
) -> None:
    _script(versions_dir, "r", body)
    assert shipped_heads() is None
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as connection:
        assert is_at_head(connection) is False  # so the caller migrates, through Alembic
    engine.dispose()


def test_database_revisions_are_alembics(tmp_path: Path) -> None:
    """Never migrated, at an older revision, at head: the same revisions as Alembic reads."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = create_engine(url)
    config = alembic_config()
    for target in (None, "0001_initial", "head"):
        with engine.begin() as connection:
            if target is not None:
                config.attributes["connection"] = connection
                command.upgrade(config, target)
            theirs = frozenset(MigrationContext.configure(connection).get_current_heads())
            assert database_revisions(connection) == theirs
            assert is_at_head(connection) is (target == "head")
    engine.dispose()


def _fresh(code: str, url: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter with DB_URL=url; the JSON it prints last, plus which of
    MIGRATION_ONLY it imported."""
    script = (
        "import json, os, sys\n"
        f"{code}\n"
        f"found = [m for m in {MIGRATION_ONLY!r} if m in sys.modules]\n"
        "print(json.dumps({'imported': found, 'out': globals().get('out')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "DB_URL": url}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


CREATE_AND_RECORD = (
    "from datetime import UTC, datetime\n"
    "from churnops.store.store import PredictionStore\n"
    "with PredictionStore(os.environ['DB_URL']) as store:\n"
    "    store.create()\n"
    "    now = datetime.now(UTC)\n"
    "    store.record_batch_run(started_at=now, finished_at=now, model_name='m',\n"
    "        model_version=1, rows_read=1, rows_scored=1, rows_rejected=0)\n"
    "    out = store.schema_ready\n"
)


def test_a_store_at_head_is_opened_without_alembic(sqlite_url: str) -> None:
    """What `churnops predict` does with the store (create, record the run) on a store at head."""
    found = _fresh(CREATE_AND_RECORD, sqlite_url)
    assert found == {"imported": [], "out": True}


def test_a_new_or_older_store_is_still_migrated_to_head(tmp_path: Path) -> None:
    """Not at head (no file yet, or an older schema): Alembic runs and brings it to head."""
    new = f"sqlite:///{tmp_path / 'new' / 'p.db'}"
    found = _fresh(CREATE_AND_RECORD, new)
    assert "alembic" in found["imported"]
    assert PredictionStore(new).revision() == head_revision()

    older = f"sqlite:///{tmp_path / 'older.db'}"
    engine = create_engine(older)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_initial")
    engine.dispose()
    found = _fresh(CREATE_AND_RECORD, older)
    assert "alembic" in found["imported"]
    store = PredictionStore(older)
    assert store.revision() == head_revision()
    store.close()


def test_an_unreadable_store_is_still_a_migration_error(tmp_path: Path) -> None:
    """The head check's own failure reads as before: `cannot migrate the prediction store`."""
    not_a_database = tmp_path / "p.db"
    not_a_database.write_bytes(b"this is not a SQLite file" * 100)
    store = PredictionStore(f"sqlite:///{not_a_database}")
    with pytest.raises(StoreError, match="cannot migrate the prediction store at"):
        store.upgrade()
    assert not store.schema_ready
    store.close()
