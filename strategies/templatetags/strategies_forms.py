"""Inputs of the rule builder (templates/strategies/rule_builder.html): each with its label, value and
the error the rule's schema gave for it, rendered by one small template."""

from __future__ import annotations

from django import template

register = template.Library()
INPUT = "strategies/_rule_input.html"
ROW_NAMES = {"indicator": "Indicator", "entry": "Entry condition", "exit": "Exit condition"}


def _row_name(prefix: str, row: dict) -> str:
    """What a row's inputs are called to a screen reader: "Indicator 2 Period" (the label shows "Period")."""
    return f"{ROW_NAMES.get(prefix, prefix)} {row['index'] + 1}"


def _options(choices) -> list[tuple[str, str]]:
    if isinstance(choices, str):
        return [(c, c) for c in choices.split()]
    return [(c, c) if isinstance(c, str) else (str(c[0]), str(c[1])) for c in choices]


@register.inclusion_tag(INPUT)
def rule_input(name: str, label: str, values: dict, errors: dict, placeholder: str = "", list: str = "") -> dict:
    return {
        "name": name,
        "label": label,
        "value": values.get(name, ""),
        "errs": errors.get(name, []),
        "placeholder": placeholder,
        "list": list,
    }


@register.inclusion_tag(INPUT)
def rule_select(name: str, label: str, values: dict, errors: dict, choices) -> dict:
    return {
        "name": name,
        "label": label,
        "value": values.get(name, ""),
        "errs": errors.get(name, []),
        "kind": "select",
        "options": _options(choices),
    }


@register.inclusion_tag(INPUT)
def row_input(prefix: str, row: dict, field: str, label: str, list: str = "") -> dict:
    return {
        "name": f"{prefix}-{row['index']}-{field}",
        "label": label,
        "row_name": _row_name(prefix, row),
        "value": row["values"].get(field, ""),
        "errs": row["errors"].get(field, []),
        "list": list,
    }


@register.inclusion_tag(INPUT)
def row_select(prefix: str, row: dict, field: str, label: str, choices) -> dict:
    return {
        "name": f"{prefix}-{row['index']}-{field}",
        "label": label,
        "row_name": _row_name(prefix, row),
        "value": row["values"].get(field, ""),
        "errs": row["errors"].get(field, []),
        "kind": "select",
        "options": _options(choices),
    }


@register.filter
def get(mapping: dict, key: str):
    return mapping.get(key) if isinstance(mapping, dict) else None
