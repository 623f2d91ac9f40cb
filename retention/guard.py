"""Tell the retention triggers' refusal from other database errors, and raise it as a domain error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError

from retention.errors import RetentionRefused

MARKER = "retention:"  # every message of the retention triggers starts with it (migration 0002)


def refusal(exc: BaseException) -> RetentionRefused | None:
    """Return the retention refusal ``exc`` carries (PostgreSQL SQLSTATE ZR001, or the triggers' message
    on SQLite), or None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    text = str(exc)
    if sqlstate != "ZR001" and MARKER not in text:
        return None
    message = text[text.index(MARKER) + len(MARKER) :].strip() if MARKER in text else text
    message = message.splitlines()[0] if message else "deletion refused by the retention policy"
    return RetentionRefused(f"Refused by the retention policy: {message}", extra={"sqlstate": sqlstate or ""})


@contextmanager
def retention_errors() -> Iterator[None]:
    """Turn a retention refusal raised inside the block into ``RetentionRefused``; other errors pass."""
    try:
        yield
    except DatabaseError as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        raise refused from exc
