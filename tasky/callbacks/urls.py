"""What a callback URL may be: checked when it is given, long before anything is sent to it."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL = 2048
_SCHEMES = ("http", "https")


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL of sane length; ValueError saying why not.

    Control characters and spaces are refused outright rather than quoted: they have no place in
    a URL someone meant, and some would split a request line or a log line.
    """
    if len(url) > MAX_URL:
        raise ValueError(f"the callback URL is longer than {MAX_URL} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("the callback URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check (out of range raises)
    except ValueError:
        raise ValueError("the callback URL cannot be parsed") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise ValueError("the callback URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the callback URL names no host")
    return url
