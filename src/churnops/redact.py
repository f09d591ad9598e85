"""Secrets out of what is written down: URL passwords and secret-looking settings as `***`.

Used wherever a URL or the settings are recorded somewhere a password must not go (a backup
manifest, a model's lineage manifest).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

REDACTED = "***"
_SECRET_QUERY_KEYS = ("password", "passwd", "pass", "secret", "token", "key")
# Settings whose values are secrets whatever they look like (api keys, their hashes, webhooks
# that carry a token in their path).
_SECRET_SETTING_WORDS = ("password", "secret", "token", "api_key", "webhook")


def redact_url(url: str) -> str:
    """`url` with the password of its user part and secret-looking query values replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + REDACTED
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [
                (key, REDACTED if any(s in key.lower() for s in _SECRET_QUERY_KEYS) else value)
                for key, value in pairs
            ],
            safe="*/=-",
        )
    # Swap the parts in place: urlunsplit would also "normalise" sqlite:////abs/path.
    if netloc != parts.netloc:
        url = url.replace(f"//{parts.netloc}", f"//{netloc}", 1)
    if query != parts.query:
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url


def redact_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of dumped settings with secret settings as `***` and every URL's password hidden."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out[key] = redact_settings(value)
        elif value not in (None, "", [], {}) and any(
            w in key.lower() for w in _SECRET_SETTING_WORDS
        ):
            out[key] = REDACTED
        elif isinstance(value, str) and "://" in value:
            out[key] = redact_url(value)
        else:
            out[key] = value
    return out
