"""Strategy classes by name: the built-ins register on import (``strategies.builtins``), as does the
rule strategy; a project adds its own with ``@register``."""

from __future__ import annotations

from pydantic import ValidationError

from strategies.contract import Params, Strategy
from strategies.errors import StrategyInvalid, StrategyUnknown

_CLASSES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Register ``cls`` under ``cls.name`` (a class decorator); raises ValueError on a name taken by another class."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    existing = _CLASSES.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"strategy name {cls.name!r} is taken by {existing.__qualname__}")
    _CLASSES[cls.name] = cls
    return cls


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name``; raises StrategyUnknown (422)."""
    try:
        return _CLASSES[name]
    except KeyError:
        raise StrategyUnknown(f"No strategy is registered as {name!r}.", extra={"kind": name}) from None


def registered() -> dict[str, type[Strategy]]:
    return dict(sorted(_CLASSES.items()))


def validate_params(name: str, raw: object) -> Params:
    """``raw`` (a JSON object) validated against the strategy's parameters schema.

    Raises StrategyInvalid (422) whose ``extra["field"]`` names the first offending field (dotted path)
    and ``extra["errors"]`` lists each problem.
    """
    cls = strategy_class(name)
    try:
        return cls.Params.model_validate(raw)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]) or "params", "message": item["msg"]}
            for item in error.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        raise StrategyInvalid(
            f"{first['field']}: {first['message']}", extra={"field": first["field"], "errors": problems}
        ) from None
