"""Which registered version a `models:/` URI names, read straight from the registry's database.

`import mlflow` alone costs about a second, and its SQLAlchemy store another few hundred ms before
the first query; a consumer that already holds the model in its local cache (`model_cache`) only
needs to know which version the alias points to now. That is one indexed row in the tables MLflow
itself reads (`registered_model_aliases`, `model_versions`), so it is read here with the standard
`sqlite3` module (or SQLAlchemy Core for a server database), read-only, every time: the answer is
never older than the registry's own. An MLflow server is asked the same through its REST API
(stdlib `urllib`, token or basic auth from MLflow's variables). Anything this cannot answer with
certainty (Databricks, a non-default MLflow workspace, TLS client settings, a schema it does not
know, no such alias) gives None, and the caller asks MLflow, which then also words the error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

logger = logging.getLogger(__name__)

_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
SERVER_DIALECTS = ("postgresql", "mysql", "mssql")
DEFAULT_WORKSPACE = "default"
_COLUMNS = "mv.name, mv.version, mv.source, mv.run_id, mv.creation_time, mv.status"


@dataclass(frozen=True)
class VersionRecord:
    """A registered version as the registry holds it; with the registry URI it is the cache key.

    `source`, `run_id` and the creation time are part of the key: a model deleted and registered
    again starts its version numbers at 1 again, with other artifacts.
    """

    name: str
    version: str
    source: str
    run_id: str
    created_ms: int
    status: str

    def key(self, registry_uri: str) -> str:
        """A digest of the registry (credentials left out) and the version's identity."""
        fields = {"registry": redact(registry_uri), **asdict(self)}
        fields.pop("status")
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def redact(uri: str) -> str:
    """The URI without a password (`scheme://user:secret@host` -> `scheme://user@host`)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1@", uri)


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None] | None:
    """(name, alias, version) of `models:/name@alias` or `models:/name/3`; None for other URIs."""
    found = _ALIAS.match(model_uri)
    if found:
        return found["name"], found["alias"], None
    found = _VERSION.match(model_uri)
    if found:
        return found["name"], None, found["version"]
    return None


def lookup_version(registry_uri: str, model_uri: str) -> VersionRecord | None:
    """The version `model_uri` names now, read from the registry database; None: ask MLflow."""
    parsed = parse_model_uri(model_uri)
    if parsed is None or os.environ.get("MLFLOW_WORKSPACE"):
        return None
    name, alias, version = parsed
    key = alias if alias is not None else str(version)
    try:
        if registry_uri.startswith("sqlite:"):
            row = _sqlite_row(registry_uri, name, key, by_alias=alias is not None)
        elif registry_uri.split(":", 1)[0].split("+", 1)[0] in SERVER_DIALECTS:
            row = _server_row(registry_uri, name, key, by_alias=alias is not None)
        elif registry_uri.startswith(("http://", "https://")):
            row = _rest_row(registry_uri, name, key, by_alias=alias is not None)
        else:
            return None
    except Exception as exc:  # an unknown schema or an unreachable database: MLflow decides
        logger.debug("registry lookup of %s failed: %s", model_uri, exc)
        return None
    if row is None:
        return None
    record = VersionRecord(
        name=str(row[0]),
        version=str(row[1]),
        source=str(row[2] or ""),
        run_id=str(row[3] or ""),
        created_ms=int(row[4] or 0),
        status=str(row[5] or ""),
    )
    return record if record.status == "READY" else None


def _query(*, by_alias: bool, workspace: bool, name: str, key: str) -> str:
    """The SELECT with named parameters; `workspace`: MLflow >= 3.7 schemas (one more column)."""
    where = f"mv.name = {name}"
    if by_alias:
        source = (
            "registered_model_aliases a JOIN model_versions mv ON mv.name = a.name "
            "AND mv.version = a.version" + (" AND mv.workspace = a.workspace" if workspace else "")
        )
        where = f"a.name = {name} AND a.alias = {key}"
    else:
        source = "model_versions mv"
        where += f" AND mv.version = {key}"
    if workspace:
        where += f" AND mv.workspace = '{DEFAULT_WORKSPACE}'"
    return f"SELECT {_COLUMNS} FROM {source} WHERE {where}"


def _sqlite_connect(uri: str) -> sqlite3.Connection:
    path = unquote(uri.split(":///", 1)[1].split("?", 1)[0]) if ":///" in uri else ""
    if not path or path.startswith((":memory:", "file:")) or not Path(path).exists():
        raise LookupError(f"no SQLite registry file in {redact(uri)}")
    # Read-only: a consumer never creates or migrates the registry.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def _sqlite_row(uri: str, name: str, key: str, *, by_alias: bool) -> tuple[Any, ...] | None:
    connection = _sqlite_connect(uri)
    try:
        last: Exception | None = None
        for workspace in (True, False):
            query = _query(by_alias=by_alias, workspace=workspace, name=":name", key=":key")
            try:
                row = connection.execute(query, {"name": name, "key": _typed(key, by_alias)})
                found = row.fetchone()
                return None if found is None else tuple(found)
            except sqlite3.OperationalError as exc:  # no workspace column: an older schema
                last = exc
        raise LookupError(str(last))
    finally:
        connection.close()


def _server_row(uri: str, name: str, key: str, *, by_alias: bool) -> tuple[Any, ...] | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(uri)
    try:
        last: Exception | None = None
        for workspace in (True, False):
            query = _query(by_alias=by_alias, workspace=workspace, name=":name", key=":key")
            try:
                with engine.connect() as connection:
                    found = connection.execute(
                        text(query), {"name": name, "key": _typed(key, by_alias)}
                    ).fetchone()
                return None if found is None else tuple(found)
            except DBAPIError as exc:  # no workspace column: an older schema
                last = exc
        raise LookupError(str(last))
    finally:
        engine.dispose()


_STORAGE = "SELECT storage_location FROM model_versions WHERE name = :name AND version = :version"


def local_artifacts(registry_uri: str, record: VersionRecord) -> Path | None:
    """The folder holding `record`'s files when the registry's database says it is on this
    machine (a `file://` storage location with an MLmodel in it): a first load copies it from
    there without importing MLflow or opening its tracking store (~1.5 s). None otherwise (an
    artifact server, object storage, an older schema): MLflow downloads it."""
    params = {"name": record.name, "version": int(record.version)}
    try:
        if registry_uri.startswith("sqlite:"):
            connection = _sqlite_connect(registry_uri)
            try:
                found = connection.execute(_STORAGE, params).fetchone()
            finally:
                connection.close()
        elif registry_uri.split(":", 1)[0].split("+", 1)[0] in SERVER_DIALECTS:
            from sqlalchemy import create_engine, text

            engine = create_engine(registry_uri)
            try:
                with engine.connect() as server:
                    found = server.execute(text(_STORAGE), params).fetchone()
            finally:
                engine.dispose()
        else:
            return None
    except Exception as exc:  # no such column or database: MLflow downloads it
        logger.debug("storage location of %s unknown: %s", record.uri, exc)
        return None
    location = str(found[0] or "") if found else ""
    if not location.startswith("file://"):
        return None
    folder = Path(unquote(location.removeprefix("file://")))
    return folder if (folder / "MLmodel").is_file() else None


def _typed(key: str, by_alias: bool) -> str | int:
    return key if by_alias else int(key)


# MLflow's client settings this lookup does not implement: with any of them, MLflow asks.
_TLS_SETTINGS = (
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_TRACKING_AUTH",
)


def _rest_row(uri: str, name: str, key: str, *, by_alias: bool) -> tuple[Any, ...] | None:
    """The same row from an MLflow server's REST API (stdlib `urllib`: no client to import)."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    if any(os.environ.get(setting) for setting in _TLS_SETTINGS):
        raise LookupError("TLS or auth plugin settings: left to MLflow")
    if by_alias:
        path = "registered-models/alias"
        query = {"name": name, "alias": key}
    else:
        path = "model-versions/get"
        query = {"name": name, "version": key}
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url)
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    elif user:
        secret = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(secret).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            found = json.loads(response.read())["model_version"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # no such model, alias or version
            return None
        raise
    return (
        found["name"],
        found["version"],
        found.get("source"),
        found.get("run_id"),
        found.get("creation_timestamp"),
        found.get("status"),
    )
