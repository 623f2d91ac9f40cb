"""Market depth of one instrument, the panel a watchlist row expands into (the ticket shows the same
panel under its form); the depth socket keeps it live (marketdata.depth)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from marketdata.depth import depth_html
from marketdata.models import Instrument
from marketdata.quotes import get_quote

MAX_ID = 2**63 - 1  # beyond a bigint: no row has it, and the database would refuse the comparison


@login_required
@require_GET
def depth(request: HttpRequest, instrument_id: int) -> HttpResponse:
    """The depth panel (an HTML fragment) of an active instrument; 404 for any other."""
    if instrument_id > MAX_ID or not Instrument.objects.filter(pk=instrument_id, is_active=True).exists():
        raise Http404("No such instrument.")
    return HttpResponse(depth_html(instrument_id, get_quote(instrument_id)))
