"""Callbacks: a finished task's or chain's record POSTed, signed, to a URL given at submit."""

from __future__ import annotations

from tasky.callbacks.signing import sign, verify
from tasky.callbacks.urls import check_url

__all__ = ["check_url", "sign", "verify"]
