"""The id of the request being served, carried through logs and audit events."""

from __future__ import annotations

import contextvars
import re
import uuid

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


def new_request_id(incoming: str | None = None) -> str:
    """Return ``incoming`` when it is a well-formed id (from the proxy), else a fresh UUID4 hex."""
    if incoming and _VALID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def get_request_id() -> str | None:
    return _current.get()


def set_request_id(value: str | None) -> contextvars.Token:
    return _current.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _current.reset(token)
