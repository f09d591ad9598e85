"""`churnops keys create|list|revoke`: API keys for the prediction service (hashes only on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from churnops.apikeys import add_key, read_keys_file, revoke_key
from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption
from churnops.settings import get_settings

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
KeysFileOption = typer.Option(None, "--keys-file", help="Keys file (default serving.keys_file).")


def _keys_file(config: Path | None, keys_file: Path | None) -> Path:
    return keys_file or Path(get_settings(config).resolved_keys_file())


@app.command("create")
def create_command(
    name: str | None = typer.Option(None, "--name", help="A label for the key (who uses it)."),
    keys_file: Path | None = KeysFileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Create a key: it is printed once on stdout; only its salted hash is stored."""
    with cli_errors():
        path = _keys_file(config, keys_file)
        key, entry = add_key(path, name=name)
        err_console.print(
            f"created key {entry['id']} in {path}; copy it now, it will not be shown again:"
        )
        typer.echo(key)


@app.command("list")
def list_command(
    keys_file: Path | None = KeysFileOption,
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Configured keys (ids and names; the keys themselves are never stored)."""
    with cli_errors():
        entries = read_keys_file(_keys_file(config, keys_file))
        rows = [{k: e.get(k) for k in ("id", "name", "created_at")} for e in entries]
        if as_json:
            typer.echo(json.dumps(rows))
            return
        table = Table(title="API keys")
        for column in ("id", "name", "created_at"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(row[c] or "") for c in ("id", "name", "created_at")))
        out_console.print(table)


@app.command("revoke")
def revoke_command(
    key_id: str = typer.Argument(..., help="Id shown by `churnops keys list`."),
    keys_file: Path | None = KeysFileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Remove a key: running servers refuse it within a second (they re-read the keys file)."""
    with cli_errors():
        if not revoke_key(_keys_file(config, keys_file), key_id):
            err_console.print(f"no key with id {key_id}")
            raise typer.Exit(1)
        err_console.print(f"revoked key {key_id}")
