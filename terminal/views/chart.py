"""The chart's indicator lines, as JSON for static/js/chart.js: the same page of bars the chart asks
the candle API for (``timeframe``, ``limit``, ``before``), each study's lines aligned to those bars.

The page is read with a warm-up of earlier bars in front, so the lines at the left edge of a page
already hold the values they would have on a longer history (a scrolled-back page joins the one after
it without a step)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from core.errors import ApplicationError
from marketdata.selectors import MAX_PAGE, TIMEFRAMES, candle_history_before, instrument_get
from terminal.chart_indicators import KINDS, compute, parse_studies
from terminal.errors import ChartError


def _limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 6 or not 1 <= int(text) <= MAX_PAGE:
        raise ChartError(
            f"limit must be a whole number from 1 to {MAX_PAGE}", code="invalid_limit", extra={"max": MAX_PAGE}
        )
    return int(text)


def _before(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text[:40])
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or not 1990 <= value.year <= 2200:
        raise ChartError(
            "before must be a time with a zone, e.g. 2026-11-25T09:15:00+05:30",
            code="invalid_before",
            extra={"before": text[:40]},
        )
    return value


@login_required
@require_GET
def indicators(request: HttpRequest, instrument_id: int) -> JsonResponse:
    """Answer ``{"ts": [...], "studies": {key: {"overlay": bool, "lines": {name: [...]}}}}``, or the error
    as ``{"code", "message", "extra"}`` with its 4xx status (an unknown instrument 404, a bad study 422)."""
    try:
        instrument_get(instrument_id=instrument_id)
        timeframe = request.GET.get("timeframe", "1m")
        if timeframe not in TIMEFRAMES:
            raise ChartError(
                f"timeframe {timeframe[:10]!r} is not one of {', '.join(TIMEFRAMES)}",
                code="invalid_timeframe",
                extra={"allowed": list(TIMEFRAMES)},
            )
        limit = _limit(request.GET.get("limit", "500"))
        before = _before(request.GET.get("before", ""))
        studies = parse_studies(request.GET.get("studies", ""))
        warmup = max(study.warmup for study in studies)
        rows = candle_history_before(
            instrument_id=instrument_id,
            timeframe=timeframe,
            before=before or datetime.now(UTC) + timedelta(minutes=1),
            limit=min(MAX_PAGE, limit + warmup),
        )
    except ApplicationError as error:
        return JsonResponse(error.as_dict(), status=error.status)
    shown = max(0, len(rows) - limit)
    body = {
        "ts": [row.ts.isoformat() for row in rows[shown:]],
        "studies": {
            study.key: {
                "overlay": KINDS[study.kind].overlay,
                "lines": {name: values[shown:] for name, values in compute(study, rows).items()},
            }
            for study in studies
        },
    }
    return JsonResponse(body)
