"""The summary chart of a PDF export: a report names what it charts (``ChartSpec``), and the rows are
tallied into bars as they are written.

The default counts rows per day of the first column whose name says it is a date or a time
(``date_ist``, ``executed_at_ist``); a report passes its own spec to chart its natural measure (the
order-to-trade ratio: orders and trades per day). Over ``MAX_BARS`` days the bars become months."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

MAX_BARS = 62


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """Bars per ``category`` (a column of the header); ``by_day`` keeps a date or time column's day
    (its first 10 characters). ``measures`` are columns summed per bar, one series each; none counts
    the rows."""

    title: str
    category: str
    by_day: bool = True
    measures: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"title": self.title, "category": self.category, "by_day": self.by_day, "measures": list(self.measures)}

    @classmethod
    def from_dict(cls, data: dict) -> ChartSpec:
        return cls(data["title"], data["category"], bool(data["by_day"]), tuple(data["measures"]))


def default_chart(header: Sequence[str]) -> ChartSpec | None:
    """Rows per day of the header's first date or time column; None when it has none."""
    for name in header:
        if "date" in name or name.endswith(("_at", "_at_ist", "_time", "_ist")):
            return ChartSpec(title="Rows per day", category=name)
    return None


@dataclass
class ChartTally:
    """The bars of ``spec`` over ``header``'s rows, fed one row at a time by ``add``."""

    spec: ChartSpec
    header: Sequence[str]
    sums: dict[str, list[Decimal]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = list(self.header)
        self._category = names.index(self.spec.category)
        self._measures = [names.index(name) for name in self.spec.measures]
        self.sums = defaultdict(lambda: [Decimal(0)] * max(1, len(self._measures)))

    def add(self, row: Sequence) -> None:
        key = "" if row[self._category] is None else str(row[self._category])
        if self.spec.by_day:
            key = key[:10]
        bar = self.sums[key]
        if not self._measures:
            bar[0] += 1
            return
        for i, column in enumerate(self._measures):
            with suppress(InvalidOperation):  # a text cell in a measured column adds nothing
                bar[i] += Decimal(str(row[column] or 0))

    def series_names(self) -> list[str]:
        return list(self.spec.measures) or ["rows"]

    def bars(self) -> tuple[list[str], list[list[float]]]:
        """Return the categories in order and one list of values per series; days become months
        (``YYYY-MM``) when there are more than MAX_BARS of them."""
        sums = dict(self.sums)
        if self.spec.by_day and len(sums) > MAX_BARS:
            months: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(self.series_names()))
            for key, values in sums.items():
                month = months[key[:7]]
                for i, value in enumerate(values):
                    month[i] += value
            sums = dict(months)
        categories = sorted(sums)
        series = [[float(sums[key][i]) for key in categories] for i in range(len(self.series_names()))]
        return categories, series
