"""Wire shapes of the token and audit routes: the request is validated with them, the answers are
documented with them (the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(description="1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit.")
    role: Literal["viewer", "operator", "admin"]
    workers: list[str] | None = Field(
        default=None, description="An operator limited to these workers (default: every worker)."
    )
    expires_days: float | None = Field(
        default=None, gt=0, le=36500, description="Days until the token stops working."
    )


class TokenInfo(BaseModel):
    Name: str
    Role: str
    Workers: list[str] | None
    CreatedAt: float
    ExpiresAt: float | None
    LastUsedAt: float | None
    Expired: bool


class TokenCreated(TokenInfo):
    Token: str = Field(description="The token itself: shown this once, only its hash is kept.")


class TokenList(BaseModel):
    Tokens: list[TokenInfo]


class TokenRevoked(BaseModel):
    Name: str
    Revoked: bool


class AuditEntry(BaseModel):
    Seq: int
    Time: float
    Token: str = Field(description="The name of the token used (bootstrap, anonymous, or stored).")
    Client: str = Field(description="The client's address.")
    Method: str
    Route: str
    Target: str = Field(description="What the call was about: task=ID, worker=NAME, token=NAME...")
    Status: int = Field(description="The answer's HTTP status.")


class AuditList(BaseModel):
    Entries: list[AuditEntry]
    NextCursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )
