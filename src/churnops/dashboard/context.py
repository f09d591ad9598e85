"""What every page needs: the settings and the API client, built once per configuration.

`churnops app` hands its settings to the Streamlit process through the environment (the config
file path, CHURNOPS_APP__API_URL, CHURNOPS_API_KEY); the app reads them here, at run time only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from churnops.dashboard.client import ApiClient, Ok, Problem
from churnops.errors import ChurnopsError, ConfigError
from churnops.settings import Settings, get_settings

API_KEY_ENV = "CHURNOPS_API_KEY"
API_KEY_FILE_ENV = "CHURNOPS_API_KEY_FILE"  # a file holding the key (a container secret)


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    client: ApiClient


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            (key, value)
            for key, value in os.environ.items()
            if key.startswith("CHURNOPS_") or key == "MLFLOW_TRACKING_URI"
        )
    )


def _key_from_file(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise ConfigError(f"{API_KEY_FILE_ENV}={path} cannot be read: {exc.strerror}") from exc


@st.cache_resource(show_spinner=False)
def _build(environment: tuple[tuple[str, str], ...]) -> AppContext:
    settings = get_settings()
    env = dict(environment)
    key = env.get(API_KEY_ENV) or _key_from_file(env.get(API_KEY_FILE_ENV)) or settings.app.api_key
    client = ApiClient(
        settings.app.api_url, api_key=key, timeout_seconds=settings.app.timeout_seconds
    )
    return AppContext(settings, client)


def app_context() -> AppContext:
    """The context for the current environment; a bad configuration stops the page in words."""
    try:
        return _build(_environment())
    except ChurnopsError as exc:
        st.error(f"The app's configuration is not valid: {exc}")
        st.stop()
        raise  # st.stop() raises; this keeps type checkers sure nothing follows


def show_problem(problem: Problem, *, what: str) -> None:
    """A Problem as a message box with what to do about it."""
    text = f"Could not {what}. {problem.message}"
    if problem.kind in ("unreachable", "not_ready", "server"):
        st.error(text, icon=":material/cloud_off:")
    elif problem.kind == "invalid" and problem.fields:
        lines = "\n".join(f"- **{name}**: {reason}" for name, reason in problem.fields.items())
        st.error(f"{text}\n\n{lines}", icon=":material/error:")
    else:
        st.warning(text, icon=":material/warning:")


def served_model(context: AppContext) -> dict[str, Any] | None:
    """`GET /model`, or None after telling the user why there is none."""
    result = context.client.model()
    if isinstance(result, Ok):
        return dict(result.value)
    show_problem(result, what="read the served model")
    return None
