"""Credentials never leave in a URL that Tasky shows (results, logs, events, errors)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``http://user:pass@host/x`` -> ``http://***@host/x``; other URLs unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Unparseable: whatever precedes the last "@" of the authority may be a secret.
        head, sep, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        if sep and "@" in authority:
            return f"{head}://***@{authority.rpartition('@')[2]}{slash}{path}"
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


class RedactUrls(logging.Filter):
    """Redacts URLs among a log record's arguments (httpx logs every request's URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        return True


def _redact_arg(arg: object) -> object:
    if isinstance(arg, bytes | int | float):
        return arg  # formatted with %d and the like: leave their type alone
    text = str(arg)
    return redact_url(text) if "://" in text and "@" in text else arg
