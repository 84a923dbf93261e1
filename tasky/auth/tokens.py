"""API tokens: how they are made, named, hashed, and turned into a Principal.

A token is ``tasky_`` + 43 URL-safe characters from :func:`secrets.token_urlsafe` (256 random
bits). Only its SHA-256 is stored: for a random token of that entropy a fast hash is right (a slow
password hash protects guessable secrets; nothing here is guessable), and looking a token up by
its hash means no comparison ever runs over a secret byte by byte.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from tasky.auth.principal import Principal, Role
from tasky.store.records import TokenRecord

PREFIX = "tasky_"
DAY = 86400.0
# Names appear in logs, the audit log and tables: short, ASCII, no spaces or control characters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Principals the server itself names; a stored token must not impersonate them in the audit log.
BOOTSTRAP_NAME = "bootstrap"
RESERVED_NAMES = frozenset({BOOTSTRAP_NAME, "anonymous"})


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    """The name if it is acceptable; ValueError (with the rule) otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            "a token name is 1 to 64 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"the token name {name!r} is reserved")
    return name


def check_workers(workers: list[str] | None) -> list[str] | None:
    """Lower-case worker names (URLs name workers case-insensitively), or None for all."""
    if workers is None:
        return None
    cleaned = sorted({w.strip().lower() for w in workers if w.strip()})
    if not cleaned:
        raise ValueError("--workers names no worker; leave it out to allow every worker")
    for worker in cleaned:
        if not _NAME.fullmatch(worker):
            raise ValueError(f"not a worker name: {worker!r}")
    return cleaned


def make_token(
    name: str, role: str, workers: list[str] | None, expires_days: float | None, now: float
) -> tuple[str, TokenRecord]:
    """A new token and the record to store (its hash); ValueError if a value is not allowed."""
    name = check_name(name)
    if role not in Role.__members__:
        raise ValueError(f"unknown role {role!r}; use viewer, operator or admin")
    workers = check_workers(workers)
    if workers is not None and role != Role.operator.name:
        raise ValueError("only an operator token is limited to workers")
    if expires_days is not None and not 0 < expires_days <= 36500:
        raise ValueError("a token expires after more than 0 and at most 36500 days")
    token = new_token()
    record = TokenRecord(
        name=name,
        token_hash=hash_token(token),
        role=role,
        workers=workers,
        created_at=now,
        expires_at=None if expires_days is None else now + expires_days * DAY,
    )
    return token, record


def principal_for(record: TokenRecord) -> Principal:
    workers = None if record.workers is None else frozenset(record.workers)
    return Principal(name=record.name, role=Role[record.role], workers=workers)


def is_expired(record: TokenRecord, now: float) -> bool:
    return record.expires_at is not None and record.expires_at <= now


def token_view(record: TokenRecord, now: float) -> dict[str, Any]:
    """A token as the API and the CLI show it: everything but its hash."""
    return {
        "Name": record.name,
        "Role": record.role,
        "Workers": record.workers,
        "CreatedAt": record.created_at,
        "ExpiresAt": record.expires_at,
        "LastUsedAt": record.last_used_at,
        "Expired": is_expired(record, now),
    }
