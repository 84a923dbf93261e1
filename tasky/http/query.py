"""Query parameters: only the documented ones, each at most once, numbers parsed strictly.

Every route's allowed parameters are the ``query`` entries of its OpenAPI ``Doc``: the docs and
the check read the same table, so they cannot drift, and a typo such as ``?timout=30`` is a 400
instead of a silently ignored limit. Numbers are ASCII digits only: ``str.isdigit`` accepts
``²`` and ``٣``, which ``int()`` then refuses (a 500), and ``float()`` accepts ``nan``, ``inf``,
``1e3`` and surrounding spaces.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from tasky.echo import shown
from tasky.http.responses import ApiError

Handler = Callable[[Request], Awaitable[Response]]

# 18 digits keep every accepted integer below 2**63 (store cursors are 64-bit).
_INTEGER = re.compile(r"[0-9]{1,18}", re.ASCII)
# The largest cursor, sequence number or count a query parameter takes: "no upper bound" to people.
NO_LIMIT = 2**62
# Plain decimals only: no sign, exponent, spaces, nan or inf (all finite by construction).
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?", re.ASCII)


def ascii_int(text: str) -> int | None:
    """The integer written in ASCII digits, or None for anything else."""
    return int(text) if _INTEGER.fullmatch(text) else None


def check_names(query_string: bytes, allowed: frozenset[str]) -> None:
    """400 naming any parameter the route does not document, or any given more than once."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    counts = Counter(name for name, _ in pairs)
    unknown = sorted(name for name in counts if name not in allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        names = ", ".join(shown(n) for n in unknown[:5])
        raise ApiError(400, f"unknown query parameter(s) {names}; this route takes: {known}")
    repeated = sorted(name for name, n in counts.items() if n > 1)
    if repeated:
        raise ApiError(400, f"query parameter(s) given more than once: {', '.join(repeated)}")


def only_documented(handler: Handler, documented: Iterable[tuple[str, str, str]]) -> Handler:
    """``handler`` behind :func:`check_names` with the names of its Doc's ``query`` entries."""
    allowed = frozenset(name for name, _, _ in documented)

    async def checked(request: Request) -> Response:
        query_string: bytes = request.scope["query_string"]
        if query_string:  # the hot path (submit, status) usually has none
            check_names(query_string, allowed)
        return await handler(request)

    checked.__name__ = checked.__qualname__ = getattr(handler, "__name__", "handler")
    checked.__doc__ = handler.__doc__
    return checked


def int_param(
    request: Request, name: str, low: int, high: int = NO_LIMIT, default: int | None = None
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = ascii_int(raw)
    if value is None or not low <= value <= high:
        wanted = f"from {low} to {high}" if high < NO_LIMIT else f"of {low} or more"
        raise ApiError(
            400, f"query parameter {name} must be a whole number {wanted}, not {shown(raw)}"
        )
    return value


def cursor_param(request: Request) -> int | None:
    """``?cursor=``: the NextCursor of a previous page (opaque to clients, so said that way)."""
    raw = request.query_params.get("cursor")
    if raw is None or raw == "":
        return None
    value = ascii_int(raw)
    if value is None or value > NO_LIMIT:
        raise ApiError(
            400,
            "query parameter cursor must be the NextCursor of a previous page (or left out "
            f"for the first page), not {shown(raw)}",
        )
    return value


def _decimal_text(value: float) -> str:
    """``2592000`` rather than ``2.592e+06``: people read plain numbers."""
    return f"{value:.12f}".rstrip("0").rstrip(".")


def float_param(
    request: Request,
    name: str,
    low: float,
    high: float,
    default: float | None = None,
    *,
    low_included: bool = True,
    unit: str = "",
    high_text: str = "",
) -> float | None:
    """A plain decimal (``30``, ``0.5``) within [low, high], or (low, high] without ``low``.

    ``unit`` ("seconds") and ``high_text`` ("30 days") only word the error message.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = float(raw) if _DECIMAL.fullmatch(raw) else None
    above_low = value is not None and (value >= low if low_included else value > low)
    if value is None or not above_low or value > high:
        what = f"a number of {unit}" if unit else "a decimal number"
        floor = f"at least {_decimal_text(low)}" if low_included else f"above {_decimal_text(low)}"
        ceiling = f"at most {_decimal_text(high)}" + (f" ({high_text})" if high_text else "")
        raise ApiError(
            400, f"query parameter {name} must be {what}, {floor} and {ceiling}, not {shown(raw)}"
        )
    return value
