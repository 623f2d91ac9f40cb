"""The metric names a PromQL expression reads, and the metric names the terminal exports."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

# Words that PromQL gives a meaning of its own; none can be a metric in our expressions.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
_MODIFIERS = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    """Return the metric names ``expr`` selects (functions, labels, keywords and durations left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    expr = re.sub(_MODIFIERS, " ", expr)  # grouping label lists
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables ($__rate_interval, $namespace)
    names = set()
    for match in re.finditer(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        followed_by = expr[match.end() :].lstrip()[:1]
        if followed_by == "(" or match.group().lower() in _KEYWORDS:
            continue  # a function or an aggregation, or an operator
        names.add(match.group())
    return names


def grafana_query_metric_names(query: str) -> set[str]:
    """Return the metric names a Grafana variable query reads (label_values(metric, label) or PromQL)."""
    label_values = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*", query)
    return metric_names(label_values.group(1)) if label_values else metric_names(query)


def exported_metric_names() -> set[str]:
    """Return every sample name the process's default registry can export, observed yet or not.

    Collecting runs the scrape-time collectors (health checks), so the database must be reachable.
    """
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names
