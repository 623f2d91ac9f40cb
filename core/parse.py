"""Parsing of form and query values that may be missing or malformed."""

from __future__ import annotations


def int_or_none(value) -> int | None:
    """Return ``value`` as an int, or None when it is missing or not a whole number."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
