"""A request that fails validation: 422 naming each field it got wrong (``Fields``)."""

from __future__ import annotations

from pydantic import ValidationError

from tasky.echo import clip
from tasky.http.responses import ApiError

# A config with thousands of bad keys gets this many named; field names and messages are clipped.
MAX_FIELD_ERRORS = 20


def validation_error(exc: ValidationError, what: str = "config") -> ApiError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    fields = [
        {
            "field": clip(".".join(str(p) for p in err["loc"]) or "(body)", 100),
            "message": clip(err["msg"], 300),
            "type": err["type"],
        }
        for err in errors[:MAX_FIELD_ERRORS]
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    if len(errors) > MAX_FIELD_ERRORS:
        summary += f"; and {len(errors) - MAX_FIELD_ERRORS} more"
    return ApiError(422, f"invalid {what}: {summary}", Fields=fields)
