"""A report's functions named by module path, so a worker can find them: an export job stores how to
make its rows (the report's rows function and its filter parser) as ``module:qualname`` text, and the
worker imports them. Only module-level functions of the compliance app are named or resolved."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

PACKAGE = "compliance"


class UnresolvableReference(ValueError):
    pass


def reference(function: Callable) -> str | None:
    """Return ``function``'s ``module:qualname``, or None when a worker could not import it (a lambda,
    a closure, or a function outside the compliance app)."""
    module, qualname = getattr(function, "__module__", ""), getattr(function, "__qualname__", "")
    if not module.startswith(PACKAGE + ".") or not qualname or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def resolve(text: str) -> Callable:
    """Return the function ``text`` names. Raises UnresolvableReference when it names none."""
    module_name, _, qualname = text.partition(":")
    if not module_name.startswith(PACKAGE + ".") or not qualname or "<" in qualname:
        raise UnresolvableReference(f"{text!r} does not name a function of the compliance app")
    try:
        found: object = import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise UnresolvableReference(f"{text!r} names nothing importable: {exc}") from exc
    if not callable(found):
        raise UnresolvableReference(f"{text!r} is not callable")
    return found
