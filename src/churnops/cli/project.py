"""`churnops project COMMAND ...` (hidden): how the MLproject entry points call churnops.

MLflow Projects pass every declared parameter, an unset one as its `""` default, and the CLI
refuses an empty `--target ''` (on purpose: a typo must not pass). This drops each `--flag ""`
pair and runs `churnops COMMAND` with the rest.
"""

from __future__ import annotations

import typer


def without_empty_options(args: list[str]) -> list[str]:
    """`args` less every `--flag` whose value is the empty string (positionals are kept)."""
    kept: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if token.startswith("--") and index + 1 < len(args) and args[index + 1] == "":
            index += 2
            continue
        kept.append(token)
        index += 1
    return kept


def project_command(ctx: typer.Context) -> None:
    """Run a churnops command with the empty `--flag ""` pairs MLflow Projects pass left out."""
    from churnops.cli.main import app  # the root app: imported when run, never at import time

    app(args=without_empty_options(list(ctx.args)), prog_name="churnops")
